"""Where scan images live: a local directory by default, S3 (or MinIO) when configured.

Keys are relative, slash-separated paths made of plain segments (``scans/2025/ab12/image.jpg``):
the same key works on both stores, and a key can never climb out of the local root.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from growbin.errors import GrowbinError, ServiceUnavailableError

MAX_KEY_LENGTH = 512
# Segments may not start with a dot: that rules out "." and "..", and keeps the local store's
# temporary files (".tmp-*") out of the key space, so listings never return them.
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_TEMP_PREFIX = ".tmp-"


class StorageError(GrowbinError):
    """An image store could not do what was asked."""


class InvalidKeyError(StorageError):
    """A key is not a safe relative path."""


class ImageNotFoundError(StorageError):
    """No image is stored under the key."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise InvalidKeyError saying why."""
    if not key:
        raise InvalidKeyError("the image key is empty: give a relative path such as scans/x.jpg")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"the image key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}: "
            "use shorter path segments"
        )
    if key.startswith("/") or "\\" in key:
        raise InvalidKeyError(
            f"the image key {key!r} must be a relative path with forward slashes, "
            "like scans/ab12/image.jpg"
        )
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidKeyError(
                f"the image key {key!r} has the segment {segment!r}: each segment must be "
                "letters, digits, '.', '_' or '-', not empty and not starting with '.' "
                "(so no '..')"
            )
    return key


def make_key(*parts: str) -> str:
    """Join parts into a key, checking the result: ``make_key("scans", scan_id, "image.jpg")``."""
    return check_key("/".join(parts))


@runtime_checkable
class ImageStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``key`` (replacing it) and return its URI."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; ImageNotFoundError if there are none."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error (cleanup may run twice)."""
        ...

    def exists(self, key: str) -> bool: ...

    def list_older_than(self, age: timedelta) -> list[str]:
        """Keys last written more than ``age`` ago, sorted, for the old-image cleanup job."""
        ...


def _check_age(age: timedelta) -> None:
    if age < timedelta(0):
        raise StorageError(f"the age {age} is negative: give a positive timedelta")


class LocalImageStore:
    """Images as files under ``root``. Writes are atomic: a temp file, fsync, then a rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
        # The key is already safe; this catches a symlink inside the root that points outside.
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise InvalidKeyError(
                f"the image key {key!r} resolves outside {root} (through a symlink): "
                "remove the link from the image directory"
            )
        return path

    def put(self, key: str, data: bytes, content_type: str) -> str:
        # The local store keeps no content type: it follows from the key's extension.
        path = self._path(key)
        fd, tmp = _temp_file_in(path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)
        return path.resolve().as_uri()

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ImageNotFoundError(
                f"no image under the key {key!r} in {self.root}: check the key, or whether "
                "the cleanup job already removed it"
            ) from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # Prune the now-empty directories up to the root, so cleanup does not leave husks.
        root = self.root.resolve()
        parent = path.parent.resolve()
        while parent != root and parent.is_relative_to(root):
            try:
                parent.rmdir()
            except OSError:
                break  # not empty, or already gone
            parent = parent.parent

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_older_than(self, age: timedelta) -> list[str]:
        _check_age(age)
        if not self.root.is_dir():
            return []
        cutoff = time.time() - age.total_seconds()
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue  # temp files of writes in progress (or of a crash)
                full = Path(dirpath, name)
                with contextlib.suppress(FileNotFoundError):
                    if full.stat().st_mtime < cutoff:
                        keys.append(full.relative_to(self.root).as_posix())
        return sorted(keys)


def _temp_file_in(directory: Path) -> tuple[int, str]:
    for _ in range(2):
        directory.mkdir(parents=True, exist_ok=True)
        # delete() prunes empty directories; a concurrent prune may remove this one in between.
        with contextlib.suppress(FileNotFoundError):
            return tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; some platforms cannot open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class S3ImageStore:
    """Images in an S3 bucket (or MinIO, Ceph... through ``endpoint_url``), via boto3.

    Credentials follow boto3's usual chain (environment, profile, instance role) unless given.
    ``prefix`` puts every key under a folder of a shared bucket.
    """

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        *,
        region_name: str | None = None,
        prefix: str = "",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = check_key(prefix.strip("/")) + "/" if prefix.strip("/") else ""
        if client is None:
            try:
                # Imported here: boto3 is optional, and heavy to import for local-only setups.
                boto3 = importlib.import_module("boto3")
            except ImportError:
                raise StorageError(
                    "S3ImageStore needs boto3, which is not installed: `pip install boto3` "
                    "(or use LocalImageStore)"
                ) from None
            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region_name,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
            )
        self._client = client

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        botocore_exceptions = importlib.import_module("botocore.exceptions")
        try:
            return getattr(self._client, operation)(Bucket=self.bucket, **kwargs)
        except botocore_exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ImageNotFoundError(
                    f"no image under the key {kwargs.get('Key')!r} in s3://{self.bucket}: "
                    "check the key, or whether the cleanup job already removed it"
                ) from None
            if code == "NoSuchBucket":
                raise StorageError(
                    f"the bucket {self.bucket!r} does not exist: create it, or fix the bucket name"
                ) from None
            raise StorageError(
                f"S3 {operation} on s3://{self.bucket}/{kwargs.get('Key', '')} failed with "
                f"{code or 'an error'}: {error.get('Message', exc)}; check the bucket policy "
                "and the credentials"
            ) from None
        except botocore_exceptions.NoCredentialsError:
            raise StorageError(
                f"no S3 credentials for s3://{self.bucket}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or an AWS profile or instance role)"
            ) from None
        except botocore_exceptions.BotoCoreError as exc:
            raise ServiceUnavailableError(
                "S3", self.endpoint_url or "the default AWS endpoint", str(exc)
            ) from None

    def put(self, key: str, data: bytes, content_type: str) -> str:
        self._call("put_object", Key=self._key(key), Body=data, ContentType=content_type)
        return f"s3://{self.bucket}/{self._key(key)}"

    def get(self, key: str) -> bytes:
        body = self._call("get_object", Key=self._key(key))["Body"]
        return bytes(body.read())

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self._key(key))  # S3 deletes are idempotent

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=self._key(key))
        except ImageNotFoundError:
            return False
        return True

    def list_older_than(self, age: timedelta) -> list[str]:
        _check_age(age)
        cutoff = datetime.now(UTC) - age
        keys: list[str] = []
        token: str | None = None
        while True:
            extra: dict[str, Any] = {"ContinuationToken": token} if token else {}
            page = self._call("list_objects_v2", Prefix=self.prefix, **extra)
            for obj in page.get("Contents", []):
                if obj["LastModified"] < cutoff:
                    keys.append(str(obj["Key"])[len(self.prefix) :])
            if not page.get("IsTruncated"):
                return sorted(keys)
            token = page["NextContinuationToken"]
