"""S3ImageStore against moto's in-process S3 fake (skipped when boto3 or moto is missing)."""

from datetime import timedelta

import pytest

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

from growbin.scan.storage import (  # noqa: E402 - after the skips on purpose
    ImageNotFoundError,
    ImageStore,
    S3ImageStore,
    StorageError,
)

BUCKET = "growbin-images"


@pytest.fixture
def s3(monkeypatch):
    # Fake credentials, so nothing can reach a real account even if the mock were bypassed.
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(var, value)
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_the_s3_store_round_trips_an_image_with_its_content_type(s3):
    store = S3ImageStore(BUCKET, region_name="us-east-1")
    assert isinstance(store, ImageStore)
    assert store.put("scans/ab/image.jpg", b"jpeg", "image/jpeg") == (
        f"s3://{BUCKET}/scans/ab/image.jpg"
    )
    assert store.exists("scans/ab/image.jpg")
    assert store.get("scans/ab/image.jpg") == b"jpeg"
    head = s3.head_object(Bucket=BUCKET, Key="scans/ab/image.jpg")
    assert head["ContentType"] == "image/jpeg"
    store.delete("scans/ab/image.jpg")
    store.delete("scans/ab/image.jpg")  # idempotent
    assert not store.exists("scans/ab/image.jpg")


def test_a_missing_s3_key_raises_image_not_found(s3):
    with pytest.raises(ImageNotFoundError, match=r"scans/none\.jpg"):
        S3ImageStore(BUCKET, region_name="us-east-1").get("scans/none.jpg")


def test_a_missing_bucket_is_named(s3):
    with pytest.raises(StorageError, match="no-such-bucket"):
        S3ImageStore("no-such-bucket", region_name="us-east-1").put("a.jpg", b"x", "image/jpeg")


def test_the_prefix_is_added_on_write_and_removed_from_listings(s3):
    store = S3ImageStore(BUCKET, region_name="us-east-1", prefix="/prod/")
    store.put("scans/a.jpg", b"x", "image/jpeg")
    s3.put_object(Bucket=BUCKET, Key="other/b.jpg", Body=b"y")
    assert s3.get_object(Bucket=BUCKET, Key="prod/scans/a.jpg")["Body"].read() == b"x"
    assert store.list_older_than(timedelta(0)) == ["scans/a.jpg"]
    assert store.list_older_than(timedelta(days=1)) == []


class FailingClient:
    """A stand-in boto3 client whose every call raises the given botocore error."""

    def __init__(self, error):
        self.error = error

    def __getattr__(self, name):
        def call(**kwargs):
            raise self.error

        return call


def test_missing_credentials_are_named_with_the_variables_to_set():
    from botocore.exceptions import NoCredentialsError

    store = S3ImageStore(BUCKET, client=FailingClient(NoCredentialsError()))
    with pytest.raises(StorageError, match="AWS_ACCESS_KEY_ID"):
        store.get("a.jpg")


def test_an_unreachable_endpoint_is_a_service_unavailable_error():
    from botocore.exceptions import EndpointConnectionError

    from growbin.errors import ServiceUnavailableError

    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    store = S3ImageStore(BUCKET, endpoint_url="http://127.0.0.1:9", client=FailingClient(error))
    with pytest.raises(ServiceUnavailableError, match=r"127\.0\.0\.1:9"):
        store.put("a.jpg", b"x", "image/jpeg")
