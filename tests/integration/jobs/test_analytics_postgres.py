"""The daily aggregate and the report on PostgreSQL, migrated by the packaged migrations.

The unit tests cover the logic on SQLite; this checks the PostgreSQL side: the upsert, the
JSON path into the steps (JSONB there) and the migration's table.
"""

import hashlib
import random
import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import delete, select

from growbin.jobs import analytics
from growbin.jobs.stats_records import NO_ITEM, ScanDailyStat
from growbin.runtime.celery_app import create_app
from growbin.runtime.kv import MemoryKV
from growbin.scan.context import ScanContext, attach_scan_context
from growbin.scan.records import Scan
from growbin.settings import Settings
from growbin.topology import loader

pytestmark = pytest.mark.integration


@pytest.fixture
def day():
    # The database is shared by the session: a random day keeps this test's rows apart.
    return date(2001, 1, 1) + timedelta(days=random.randrange(3000))


@pytest.fixture
def app_ctx(database_url, tmp_path, day):
    settings = Settings(
        database_url=SecretStr(database_url),
        image_dir=str(tmp_path / "images"),
        broker_url=SecretStr("memory://"),
        result_backend_url=SecretStr("cache+memory://"),
    )
    app = create_app(settings, loader.load("production"), registrars=(analytics.register,))
    ctx = ScanContext.build(settings, kv=MemoryKV())
    attach_scan_context(app, ctx)
    yield app, ctx
    start = datetime.combine(day, time.min, tzinfo=UTC)
    with ctx.session() as session:
        session.execute(delete(ScanDailyStat).where(ScanDailyStat.day == day))
        session.execute(
            delete(Scan).where(Scan.created_at >= start, Scan.created_at < start + timedelta(1))
        )
    ctx.engine.dispose()


def add(ctx, when, status, item=None, confidence=None, cached=None):
    scan_id = uuid.uuid4().hex
    with ctx.session() as session:
        session.add(
            Scan(
                id=scan_id,
                owner="it",
                status=status,
                raw_key=f"scans/{scan_id}/raw.jpg",
                sha256=hashlib.sha256(scan_id.encode()).hexdigest(),
                item=item,
                confidence=confidence,
                steps={} if cached is None else {"classify": {"cached": cached}},
                created_at=when,
                updated_at=when,
            )
        )


def test_the_aggregate_upserts_the_same_rows_on_postgresql(app_ctx, day):
    app, ctx = app_ctx
    noon = datetime.combine(day, time(12), tzinfo=UTC)
    add(ctx, noon, "done", "can", 0.5, cached=True)
    add(ctx, noon, "done", "can", 1.0, cached=False)
    add(ctx, noon, "failed")

    app.tasks["growbin.jobs.analytics_daily"](day.isoformat())
    app.tasks["growbin.jobs.analytics_daily"](day.isoformat())

    with ctx.session() as session:
        query = select(ScanDailyStat).where(ScanDailyStat.day == day).order_by("item")
        rows = [row.as_dict() for row in session.scalars(query)]
    assert [(r["item"], r["scans"], r["done"], r["failed"], r["cache_hits"]) for r in rows] == [
        (NO_ITEM, 1, 0, 1, 0),
        ("can", 2, 2, 0, 1),
    ]
    assert rows[1]["avg_confidence"] == pytest.approx(0.75)


def test_the_report_reads_the_jsonb_steps_on_postgresql(app_ctx, day):
    app, ctx = app_ctx
    add(ctx, datetime.combine(day, time(8), tzinfo=UTC), "done", "can", 0.9, cached=True)

    result = app.tasks["growbin.jobs.report_generate"](day.isoformat(), day.isoformat())

    lines = ctx.store.get(result["key"]).decode().splitlines()
    assert len(lines) == 2
    assert lines[1].endswith(",can,,0.9,true")
