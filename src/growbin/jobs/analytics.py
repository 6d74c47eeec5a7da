"""Batch jobs over the scans table: the daily aggregate, CSV reports and the weekly report.

``analytics_save`` (seed 002's ``save_analytics``, on the bulk lane) files one scan into the
aggregate of its day as soon as it ends, so the day's figures need not wait for the 02:00 run.

Days are UTC calendar days given as ``YYYY-MM-DD``; a scan belongs to the day it was created.
Every job here can run twice with the same outcome: the aggregate is an upsert keyed by
(day, item), and a report overwrites its own key.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from celery import Celery
from sqlalchemy import ColumnElement, case, delete, func, insert, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from growbin.errors import FatalTaskError
from growbin.jobs.stats_records import NO_ITEM, ScanDailyStat
from growbin.scan.context import scan_context
from growbin.scan.records import Scan, ScanStatus
from growbin.scan.storage import ImageStore, make_key

ANALYTICS_SAVE = "growbin.jobs.analytics_save"
REPORT_PREFIX = "reports"
# The CSV is built in memory (ImageStore.put takes bytes); a year bounds it. Longer exports
# belong in several reports, or in a query against the database.
MAX_REPORT_DAYS = 366
WEEK = 7
STAT_COLUMNS = ("scans", "done", "failed", "refused", "avg_confidence", "cache_hits")
# No owner, hint or error text: the report sits in the image store, readable by whoever can
# read the images, and those columns carry user data.
REPORT_COLUMNS = (
    "id",
    "created_at",
    "completed_at",
    "status",
    "category",
    "item",
    "state",
    "confidence",
    "vision_cached",
)


def parse_day(value: object, name: str) -> date:
    """A ``YYYY-MM-DD`` string as a date; anything else is a fatal error naming the argument."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise FatalTaskError(
        f"{name}={value!r} is not a day: give it as YYYY-MM-DD (UTC), e.g. 2026-11-25"
    )


def day_bounds(first: date, last: date | None = None) -> tuple[datetime, datetime]:
    """[start of ``first``, start of the day after ``last``) in UTC."""
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last or first, time.min, tzinfo=UTC) + timedelta(days=1)
    return start, end


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _vision_cached() -> ColumnElement[bool]:
    # The classify step records {"cached": true|false}; JSON_EXTRACT on SQLite, #> on PostgreSQL.
    return Scan.steps[("classify", "cached")].as_boolean()  # type: ignore[no-any-return]


def aggregate_day(session: Session, day: date) -> list[dict[str, Any]]:
    """The day's scans grouped by item (``NO_ITEM`` for scans that never got one)."""
    start, end = day_bounds(day)
    item = func.coalesce(Scan.item, NO_ITEM)
    done = Scan.status == ScanStatus.DONE.value
    query = (
        select(
            item.label("item"),
            func.count().label("scans"),
            _count_where(done).label("done"),
            _count_where(Scan.status == ScanStatus.FAILED.value).label("failed"),
            _count_where(Scan.status == ScanStatus.REFUSED.value).label("refused"),
            func.avg(case((done, Scan.confidence))).label("avg_confidence"),
            _count_where(done & _vision_cached().is_(true())).label("cache_hits"),
        )
        .where(Scan.created_at >= start, Scan.created_at < end)
        .group_by(item)
        .order_by(item)
    )
    rows = []
    for row in session.execute(query).mappings():
        average = row["avg_confidence"]
        rows.append(
            {
                "item": str(row["item"]),
                **{name: int(row[name]) for name in STAT_COLUMNS if name != "avg_confidence"},
                "avg_confidence": None if average is None else float(average),
            }
        )
    return rows


def upsert_day(session: Session, day: date, rows: list[dict[str, Any]]) -> None:
    """Make the day's rows exactly ``rows``: items that vanished go, the others are upserted.

    An upsert rather than delete-then-insert so that two runs at once (a manual run next to the
    scheduled one) both succeed instead of one failing on the primary key.
    """
    items = [row["item"] for row in rows]
    session.execute(
        delete(ScanDailyStat).where(ScanDailyStat.day == day, ScanDailyStat.item.not_in(items))
    )
    if not rows:
        return
    values = [{"day": day, **row} for row in rows]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg = pg_insert(ScanDailyStat).values(values)
        session.execute(
            pg.on_conflict_do_update(
                index_elements=["day", "item"], set_={c: pg.excluded[c] for c in STAT_COLUMNS}
            )
        )
    elif dialect == "sqlite":
        lite = sqlite_insert(ScanDailyStat).values(values)
        session.execute(
            lite.on_conflict_do_update(
                index_elements=["day", "item"], set_={c: lite.excluded[c] for c in STAT_COLUMNS}
            )
        )
    else:
        # No portable upsert: replace the day inside this one transaction.
        session.execute(delete(ScanDailyStat).where(ScanDailyStat.day == day))
        session.execute(insert(ScanDailyStat), values)


def stats_for_day(session: Session, day: date) -> list[ScanDailyStat]:
    query = select(ScanDailyStat).where(ScanDailyStat.day == day).order_by(ScanDailyStat.item)
    return list(session.scalars(query))


def report_key(first: date, last: date) -> str:
    return make_key(REPORT_PREFIX, f"scans-{first.isoformat()}-{last.isoformat()}.csv")


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    # SQLite hands back naive datetimes; every stored time is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def write_report(session: Session, store: ImageStore, first: date, last: date) -> dict[str, Any]:
    """Export the scans created from ``first`` to ``last`` (both included) as CSV."""
    if last < first:
        raise FatalTaskError(
            f"day_to={last} is before day_from={first}: give the earlier day first"
        )
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise FatalTaskError(
            f"{first}..{last} spans {(last - first).days + 1} days; a report covers at most "
            f"{MAX_REPORT_DAYS}: split the range into several reports"
        )
    start, end = day_bounds(first, last)
    query = (
        select(
            Scan.id,
            Scan.created_at,
            Scan.completed_at,
            Scan.status,
            Scan.category,
            Scan.item,
            Scan.state,
            Scan.confidence,
            Scan.steps,
        )
        .where(Scan.created_at >= start, Scan.created_at < end)
        .order_by(Scan.created_at, Scan.id)
        .execution_options(yield_per=1000)
    )
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    rows = 0
    for row in session.execute(query):
        classify = (row.steps or {}).get("classify") or {}
        cached = classify.get("cached")
        writer.writerow(
            (
                row.id,
                _iso(row.created_at),
                _iso(row.completed_at),
                row.status,
                row.category or "",
                row.item or "",
                row.state or "",
                "" if row.confidence is None else row.confidence,
                "" if cached is None else str(bool(cached)).lower(),
            )
        )
        rows += 1
    data = out.getvalue().encode("utf-8")
    key = report_key(first, last)
    store.put(key, data, "text/csv")
    return {
        "key": key,
        "rows": rows,
        "bytes": len(data),
        "day_from": first.isoformat(),
        "day_to": last.isoformat(),
    }


def save_scan_day(session: Session, scan_id: str) -> dict[str, Any]:
    """Recompute the aggregate of the day ``scan_id`` was created (idempotent: an upsert)."""
    created = session.scalar(select(Scan.created_at).where(Scan.id == scan_id))
    if created is None:
        raise FatalTaskError(
            f"analytics_save: no scan {scan_id!r}: pass the id the API returned (scan_id)"
        )
    day = (created if created.tzinfo else created.replace(tzinfo=UTC)).astimezone(UTC).date()
    rows = aggregate_day(session, day)
    upsert_day(session, day, rows)
    return {"scan_id": scan_id, "day": day.isoformat(), "items": len(rows)}


def today_utc() -> date:
    return datetime.now(UTC).date()


def register(app: Celery) -> None:
    @app.task(name="growbin.jobs.analytics_daily", shared=False)  # type: ignore[untyped-decorator]
    def analytics_daily(day: str | None = None) -> dict[str, Any]:
        """Aggregate one UTC day's scans into scan_daily_stats (default: yesterday).

        Beat runs it at 02:00 for the day before; pass a day to fill in a missed one.
        """
        when = today_utc() - timedelta(days=1) if day is None else parse_day(day, "day")
        ctx = scan_context(app)
        with ctx.session() as session:
            rows = aggregate_day(session, when)
            upsert_day(session, when, rows)
        totals = {name: sum(row[name] for row in rows) for name in ("scans", "done", "failed")}
        return {"day": when.isoformat(), "items": len(rows), **totals}

    @app.task(name=ANALYTICS_SAVE, shared=False)  # type: ignore[untyped-decorator]
    def analytics_save(scan_id: str) -> dict[str, Any]:
        """File one scan into its day's aggregate (scan_daily_stats); safe to run twice."""
        if not isinstance(scan_id, str) or not scan_id.strip():
            raise FatalTaskError(f"analytics_save: scan_id={scan_id!r} is not a scan id")
        with scan_context(app).session() as session:
            return save_scan_day(session, scan_id.strip())

    @app.task(name="growbin.jobs.report_generate", shared=False)  # type: ignore[untyped-decorator]
    def report_generate(day_from: str, day_to: str) -> dict[str, Any]:
        """Write ``reports/scans-<from>-<to>.csv`` (both days included) to the image store."""
        first, last = parse_day(day_from, "day_from"), parse_day(day_to, "day_to")
        ctx = scan_context(app)
        with ctx.session() as session:
            return write_report(session, ctx.store, first, last)

    @app.task(name="growbin.jobs.weekly_report", shared=False)  # type: ignore[untyped-decorator]
    def weekly_report() -> dict[str, Any]:
        """The report of the last seven whole UTC days (Monday's run: the week before)."""
        today = today_utc()
        ctx = scan_context(app)
        with ctx.session() as session:
            return write_report(
                session, ctx.store, today - timedelta(days=WEEK), today - timedelta(days=1)
            )
