import os
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from growbin.errors import FatalTaskError
from growbin.jobs.stats_records import ScanDailyStat
from growbin.scan.records import Scan

DAY = 86_400


def age(path, days: float) -> None:
    """Make ``path`` look last written ``days`` ago."""
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp))


def put(ctx, key: str, days_old: float) -> None:
    ctx.store.put(key, b"x", "image/jpeg")
    age(ctx.store.root / key, days_old)


def ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def test_images_cleanup_deletes_only_old_images_of_finished_or_unknown_scans(app, ctx, add_scan):
    for status in ("done", "failed", "refused", "running", "queued"):
        add_scan(ago(40), status, id=status)
        put(ctx, f"scans/{status}/image.jpg", 40)
        put(ctx, f"scans/{status}/thumbnail.jpg", 40)
    add_scan(ago(5), "done", id="recent")
    put(ctx, "scans/recent/image.jpg", 5)
    put(ctx, "scans/orphan/raw.jpg", 40)  # no row: an intake that died, or data_cleanup ran
    put(ctx, "reports/scans-2026-01-01-2026-01-07.csv", 40)

    result = app.tasks["growbin.jobs.images_cleanup"](30)

    assert result == {"old": 11, "deleted": 7, "kept_active": 4, "not_scan_images": 1}
    left = sorted(p.relative_to(ctx.store.root).as_posix() for p in ctx.store.root.rglob("*.*"))
    assert left == [
        "reports/scans-2026-01-01-2026-01-07.csv",
        "scans/queued/image.jpg",
        "scans/queued/thumbnail.jpg",
        "scans/recent/image.jpg",
        "scans/running/image.jpg",
        "scans/running/thumbnail.jpg",
    ]


def test_images_cleanup_twice_deletes_nothing_the_second_time(app, ctx, add_scan):
    add_scan(ago(40), "done", id="done")
    put(ctx, "scans/done/image.jpg", 40)
    app.tasks["growbin.jobs.images_cleanup"]()

    assert app.tasks["growbin.jobs.images_cleanup"]()["deleted"] == 0


def test_data_cleanup_deletes_old_scans_and_their_images_in_batches_of_500(app, ctx, add_scan):
    for n in range(1001):
        scan_id = f"old{n:04d}"
        image = f"scans/{scan_id}/image.jpg" if n % 500 == 0 else None
        add_scan(ago(400), "done", id=scan_id, image_key=image)
    for key in ("scans/old0000/raw.jpg", "scans/old0000/image.jpg", "scans/old0500/image.jpg"):
        put(ctx, key, 400)
    add_scan(ago(300), "done", id="young")
    put(ctx, "scans/young/raw.jpg", 300)
    with ctx.session() as session:
        session.add(
            ScanDailyStat(
                day=date(2025, 1, 1),
                item="can",
                scans=1,
                done=1,
                failed=0,
                refused=0,
                avg_confidence=1.0,
                cache_hits=0,
            )
        )

    result = app.tasks["growbin.jobs.data_cleanup"](365)

    # every row names its raw key; three rows name an image too
    assert result == {"scans_deleted": 1001, "image_keys_deleted": 1004, "batches": 3}
    with ctx.session() as session:
        assert list(session.scalars(select(Scan.id))) == ["young"]
        assert session.scalar(select(func.count()).select_from(ScanDailyStat)) == 1
    assert not ctx.store.exists("scans/old0000/raw.jpg")
    assert not ctx.store.exists("scans/old0500/image.jpg")
    assert ctx.store.exists("scans/young/raw.jpg")


def test_data_cleanup_with_nothing_old_does_nothing(app, add_scan):
    add_scan(ago(1), "done")

    result = app.tasks["growbin.jobs.data_cleanup"]()

    assert result == {"scans_deleted": 0, "image_keys_deleted": 0, "batches": 0}


@pytest.mark.parametrize("days", [0, -1, "thirty", True, 1.5])
def test_cleanup_refuses_an_age_that_is_not_a_whole_number_of_days(app, dead_letters, days):
    with pytest.raises(FatalTaskError, match="whole number of days"):
        app.tasks["growbin.jobs.data_cleanup"](days)

    assert [letter["retryable"] for letter in dead_letters] == [False]


def test_logs_cleanup_deletes_old_log_files_and_nothing_else(app, tmp_path):
    logs, outside = tmp_path / "logs", tmp_path / "outside"
    (logs / "worker").mkdir(parents=True)
    outside.mkdir()
    files = {
        "old": logs / "app.log",
        "old_rotated": logs / "worker" / "worker.log.3.gz",
        "recent": logs / "api.log",
        "not_a_log": logs / "notes.txt",
        "target": outside / "precious.log",
    }
    for path in files.values():
        path.write_text("line\n")
        age(path, 20)
    age(files["recent"], 2)
    (logs / "link.log").symlink_to(files["target"])

    result = app.tasks["growbin.jobs.logs_cleanup"](14, log_dir=str(logs))

    assert result == {"dir": str(logs.resolve()), "found": True, "deleted": 2, "bytes": 10}
    assert sorted(name for name, path in files.items() if path.exists()) == [
        "not_a_log",
        "recent",
        "target",
    ]
    assert (logs / "link.log").is_symlink()


def test_logs_cleanup_of_a_missing_directory_says_so(app, tmp_path):
    result = app.tasks["growbin.jobs.logs_cleanup"](log_dir=str(tmp_path / "nope"))

    assert result["found"] is False
    assert result["deleted"] == 0


def test_logs_cleanup_refuses_the_filesystem_root(app, dead_letters):
    with pytest.raises(FatalTaskError, match="filesystem root"):
        app.tasks["growbin.jobs.logs_cleanup"](log_dir="/")


def test_cache_cleanup_with_the_in_memory_store_does_nothing_and_says_so(app, ctx):
    ctx.kv.set("growbin:cache:vision:abc:", "{}")

    result = app.tasks["growbin.jobs.cache_cleanup"]()

    assert result["backend"] == "MemoryKV"
    assert "nothing to do" in result["note"]
    assert ctx.kv.get("growbin:cache:vision:abc:") == "{}"
