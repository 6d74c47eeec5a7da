import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from growbin.scan import storage
from growbin.scan.storage import (
    ImageNotFoundError,
    ImageStore,
    InvalidKeyError,
    LocalImageStore,
    S3ImageStore,
    StorageError,
    make_key,
)


@pytest.fixture
def store(tmp_path):
    return LocalImageStore(tmp_path / "images")


def age(path: Path, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_the_local_store_satisfies_the_image_store_protocol(store):
    assert isinstance(store, ImageStore)


def test_an_image_put_can_be_read_back_checked_and_deleted(store):
    uri = store.put("scans/ab12/image.jpg", b"jpeg bytes", "image/jpeg")
    assert uri.startswith("file://") and uri.endswith("/images/scans/ab12/image.jpg")
    assert store.exists("scans/ab12/image.jpg")
    assert store.get("scans/ab12/image.jpg") == b"jpeg bytes"
    store.delete("scans/ab12/image.jpg")
    assert not store.exists("scans/ab12/image.jpg")


def test_put_replaces_an_existing_image(store):
    store.put("a.jpg", b"old", "image/jpeg")
    store.put("a.jpg", b"new", "image/jpeg")
    assert store.get("a.jpg") == b"new"


def test_reading_a_missing_key_names_the_key(store):
    with pytest.raises(ImageNotFoundError, match=r"scans/none\.jpg"):
        store.get("scans/none.jpg")


def test_deleting_a_missing_key_is_not_an_error(store):
    store.delete("scans/never-written.jpg")


def test_delete_prunes_empty_directories_but_keeps_the_root_and_other_images(store):
    store.put("scans/a/image.jpg", b"1", "image/jpeg")
    store.put("scans/b/image.jpg", b"2", "image/jpeg")
    store.delete("scans/a/image.jpg")
    assert not (store.root / "scans" / "a").exists()
    assert store.get("scans/b/image.jpg") == b"2"
    store.delete("scans/b/image.jpg")
    assert store.root.is_dir() and list(store.root.iterdir()) == []


@pytest.mark.parametrize(
    "key",
    [
        "../escape.jpg",
        "scans/../../escape.jpg",
        "/etc/passwd",
        "scans//image.jpg",
        "",
        "scans\\image.jpg",
        ".hidden",
        "scans/./image.jpg",
        "C:/image.jpg",
        "scans/image.jpg\x00",
        "x" * 600,
    ],
)
def test_an_unsafe_key_is_refused_and_nothing_is_written(store, tmp_path, key):
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(InvalidKeyError):
        store.put(key, b"data", "image/jpeg")
    with pytest.raises(InvalidKeyError):
        store.get(key)
    assert sorted(tmp_path.rglob("*")) == before


def test_a_symlink_out_of_the_root_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir(parents=True)
    (store.root / "link").symlink_to(outside)
    with pytest.raises(InvalidKeyError, match="symlink"):
        store.put("link/image.jpg", b"data", "image/jpeg")
    assert list(outside.iterdir()) == []


def test_make_key_joins_and_checks_the_parts():
    assert make_key("scans", "ab12", "image.jpg") == "scans/ab12/image.jpg"
    with pytest.raises(InvalidKeyError):
        make_key("scans", "..", "image.jpg")


def test_a_failed_write_keeps_the_old_image_and_leaves_no_temp_file(store, monkeypatch):
    store.put("scans/a.jpg", b"old", "image/jpeg")

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(storage.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put("scans/a.jpg", b"new but never complete", "image/jpeg")
    monkeypatch.undo()
    assert store.get("scans/a.jpg") == b"old"
    assert [p.name for p in (store.root / "scans").iterdir()] == ["a.jpg"]


def test_a_write_goes_through_a_temp_file_renamed_over_the_target(store, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((Path(src), Path(dst), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", spy)
    store.put("scans/a.jpg", b"complete", "image/jpeg")
    [(src, dst, content)] = seen
    assert src.parent == dst.parent and src.name.startswith(".tmp-")
    assert dst == store.root / "scans" / "a.jpg" and content == b"complete"


def test_list_older_than_returns_only_old_images_sorted(store):
    for key in ("scans/b/image.jpg", "scans/a/image.jpg", "scans/a/thumb.jpg", "fresh.jpg"):
        store.put(key, b"x", "image/jpeg")
    age(store.root / "scans/b/image.jpg", 10)
    age(store.root / "scans/a/image.jpg", 8)
    age(store.root / "scans/a/thumb.jpg", 6)
    assert store.list_older_than(timedelta(days=7)) == ["scans/a/image.jpg", "scans/b/image.jpg"]
    assert store.list_older_than(timedelta(days=30)) == []


def test_list_older_than_skips_temp_files_left_by_a_crash(store):
    store.put("scans/a.jpg", b"x", "image/jpeg")
    leftover = store.root / "scans" / ".tmp-abc123"
    leftover.write_bytes(b"partial")
    age(leftover, 10)
    age(store.root / "scans/a.jpg", 10)
    assert store.list_older_than(timedelta(days=1)) == ["scans/a.jpg"]


def test_list_older_than_on_an_empty_store_is_empty_and_a_negative_age_is_refused(store):
    assert store.list_older_than(timedelta(days=1)) == []
    with pytest.raises(StorageError, match="negative"):
        store.list_older_than(timedelta(days=-1))


def test_the_s3_store_without_boto3_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` fail
    with pytest.raises(StorageError, match="pip install boto3"):
        S3ImageStore("growbin-images")
