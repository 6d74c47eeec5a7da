import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from growbin.errors import FatalTaskError

REPORT = "growbin.jobs.report_generate"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def read_csv(ctx, key: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ctx.store.get(key).decode("utf-8"))))


def test_the_report_is_a_csv_of_the_ranges_scans_in_the_image_store(app, ctx, add_scan):
    add_scan(at("2026-11-20T00:00:00"), "failed", id="a" * 32, hint="my secret note")
    add_scan(
        at("2026-11-22T10:30:00"),
        item="pet_bottle",
        confidence=0.75,
        cached=True,
        id="b" * 32,
        state="clean",
        completed_at=at("2026-11-22T10:30:05"),
    )
    add_scan(at("2026-11-19T23:59:59"), item="can", id="c" * 32)
    add_scan(at("2026-11-23T00:00:00"), item="can", id="d" * 32)

    result = app.tasks[REPORT]("2026-11-20", "2026-11-22")

    key = "reports/scans-2026-11-20-2026-11-22.csv"
    assert result == {
        "key": key,
        "rows": 2,
        "bytes": len(ctx.store.get(key)),
        "day_from": "2026-11-20",
        "day_to": "2026-11-22",
    }
    rows = read_csv(ctx, key)
    assert [row["id"] for row in rows] == ["a" * 32, "b" * 32]
    assert rows[1] == {
        "id": "b" * 32,
        "created_at": "2026-11-22T10:30:00+00:00",
        "completed_at": "2026-11-22T10:30:05+00:00",
        "status": "done",
        "category": "recyclable",
        "item": "pet_bottle",
        "state": "clean",
        "confidence": "0.75",
        "vision_cached": "true",
    }
    assert rows[0]["status"] == "failed"
    assert rows[0]["item"] == rows[0]["confidence"] == rows[0]["vision_cached"] == ""
    # user data stays out of a file that sits next to the images
    assert "owner" not in rows[0]
    assert "my secret note" not in ctx.store.get(key).decode()


def test_generating_a_report_again_replaces_it(app, ctx, add_scan):
    app.tasks[REPORT]("2026-11-20", "2026-11-20")
    add_scan(at("2026-11-20T09:00:00"), item="can")

    result = app.tasks[REPORT]("2026-11-20", "2026-11-20")

    assert result["rows"] == 1
    assert len(read_csv(ctx, result["key"])) == 1


def test_a_report_whose_days_are_reversed_is_dead_lettered(app, dead_letters):
    with pytest.raises(FatalTaskError, match="give the earlier day first"):
        app.tasks[REPORT]("2026-11-22", "2026-11-20")

    assert [letter["retryable"] for letter in dead_letters] == [False]


def test_a_report_longer_than_a_year_is_refused(app, dead_letters):
    with pytest.raises(FatalTaskError, match="split the range"):
        app.tasks[REPORT]("2024-01-01", "2025-12-31")


def test_the_weekly_report_covers_the_seven_whole_days_before_today(app, ctx, add_scan):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    add_scan(today - timedelta(days=7), item="can", id="first" + "0" * 27)
    add_scan(today - timedelta(microseconds=1), item="can", id="last" + "0" * 28)
    add_scan(today - timedelta(days=7, microseconds=1), item="can")
    add_scan(today, item="can")

    result = app.tasks["growbin.jobs.weekly_report"]()

    first, last = (today - timedelta(days=7)).date(), (today - timedelta(days=1)).date()
    assert result["key"] == f"reports/scans-{first}-{last}.csv"
    assert [row["id"][:5] for row in read_csv(ctx, result["key"])] == ["first", "last0"]
