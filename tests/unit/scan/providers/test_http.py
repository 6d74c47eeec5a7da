from datetime import UTC, datetime

import pytest

from growbin.scan.providers.errors import public_url
from growbin.scan.providers.http import parse_retry_after, redact


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        (" 0.5 ", 0.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(header, seconds):
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds


def test_redact_removes_known_secrets_and_anything_shaped_like_a_key():
    text = "key my-secret, Authorization: Bearer abc.def, KakaoAK xyz, sk-proj-ABCDEF123456"
    clean = redact(text, ["my-secret"])
    for leaked in ("my-secret", "abc.def", "xyz", "ABCDEF123456"):
        assert leaked not in clean
    assert "Bearer ****" in clean


def test_public_urls_lose_passwords_and_query_strings():
    url = "https://user:pw@api.test:8443/v2/search?x=126.97&y=37.56"
    assert public_url(url) == "https://user:****@api.test:8443/v2/search"
