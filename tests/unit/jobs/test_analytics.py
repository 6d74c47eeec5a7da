from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from growbin.errors import FatalTaskError
from growbin.jobs.stats_records import NO_ITEM, ScanDailyStat
from growbin.scan.records import Scan

DAILY = "growbin.jobs.analytics_daily"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def stats(ctx, day: date) -> list[dict]:
    with ctx.session() as session:
        query = select(ScanDailyStat).where(ScanDailyStat.day == day).order_by(ScanDailyStat.item)
        return [row.as_dict() for row in session.scalars(query)]


@pytest.fixture
def november_25(add_scan):
    add_scan(at("2026-11-25T00:00:00"), item="pet_bottle", confidence=0.8, cached=True)
    add_scan(at("2026-11-25T12:00:00"), item="pet_bottle", confidence=0.6, cached=False)
    add_scan(at("2026-11-25T13:00:00"), item="can", confidence=1.0, cached=False)
    add_scan(at("2026-11-25T14:00:00"), "failed")
    add_scan(at("2026-11-25T15:00:00"), "refused")
    add_scan(at("2026-11-25T23:59:59.999"), "running")
    # the neighbouring days, right at the edges
    add_scan(at("2026-11-24T23:59:59.999"), item="can", confidence=0.1)
    add_scan(at("2026-11-26T00:00:00"), item="can", confidence=0.1)


EXPECTED_25 = [
    {
        "day": "2026-11-25",
        "item": NO_ITEM,
        "scans": 3,
        "done": 0,
        "failed": 1,
        "refused": 1,
        "avg_confidence": None,
        "cache_hits": 0,
    },
    {
        "day": "2026-11-25",
        "item": "can",
        "scans": 1,
        "done": 1,
        "failed": 0,
        "refused": 0,
        "avg_confidence": 1.0,
        "cache_hits": 0,
    },
    {
        "day": "2026-11-25",
        "item": "pet_bottle",
        "scans": 2,
        "done": 2,
        "failed": 0,
        "refused": 0,
        "avg_confidence": pytest.approx(0.7),
        "cache_hits": 1,
    },
]


def test_the_daily_aggregate_counts_one_utc_days_scans_per_item_and_status(app, ctx, november_25):
    result = app.tasks[DAILY]("2026-11-25")

    assert result == {"day": "2026-11-25", "items": 3, "scans": 6, "done": 3, "failed": 1}
    assert stats(ctx, date(2026, 11, 25)) == EXPECTED_25


def test_running_the_aggregate_twice_gives_the_same_rows(app, ctx, november_25):
    app.tasks[DAILY]("2026-11-25")
    first = stats(ctx, date(2026, 11, 25))
    app.tasks[DAILY]("2026-11-25")

    assert stats(ctx, date(2026, 11, 25)) == first == EXPECTED_25


def test_a_rerun_follows_scans_that_changed_or_were_deleted_since(app, ctx, add_scan):
    gone = add_scan(at("2026-11-25T08:00:00"), item="can", confidence=0.9)
    late = add_scan(at("2026-11-25T09:00:00"), "running")
    app.tasks[DAILY]("2026-11-25")
    with ctx.session() as session:
        session.delete(session.get(Scan, gone.id))
        scan = session.get(Scan, late.id)
        scan.status, scan.item, scan.confidence = "done", "glass_bottle", 0.5

    app.tasks[DAILY]("2026-11-25")

    rows = stats(ctx, date(2026, 11, 25))
    assert [(row["item"], row["scans"], row["done"]) for row in rows] == [("glass_bottle", 1, 1)]


def test_without_a_day_the_aggregate_covers_yesterday_in_utc(app, ctx, add_scan):
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    add_scan(datetime.combine(yesterday, datetime.min.time(), tzinfo=UTC), item="paper")

    result = app.tasks[DAILY]()

    assert result["day"] == yesterday.isoformat()
    assert [row["item"] for row in stats(ctx, yesterday)] == ["paper"]


def test_a_day_with_no_scans_leaves_no_rows(app, ctx):
    assert app.tasks[DAILY]("2026-01-01")["items"] == 0
    assert stats(ctx, date(2026, 1, 1)) == []


def test_a_malformed_day_is_dead_lettered_at_once_naming_the_format(app, dead_letters):
    with pytest.raises(FatalTaskError, match="YYYY-MM-DD"):
        app.tasks[DAILY]("25/11/2026")

    assert len(dead_letters) == 1
    assert dead_letters[0]["retryable"] is False
