"""Job tasks run in-process on SQLite, a temporary image directory and an in-memory store.

A direct call (``app.tasks[name](...)``) runs the task body synchronously through the task
base, so retries and dead letters are decided exactly as on a worker; the dead letters are
recorded here instead of being published.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import pytest
from pydantic import SecretStr

from growbin.db.base import Base
from growbin.jobs import analytics, cleanup, external
from growbin.jobs.stats_records import ScanDailyStat
from growbin.runtime.celery_app import create_app
from growbin.runtime.kv import MemoryKV
from growbin.runtime.task_base import GrowbinTask
from growbin.scan.context import ScanContext, attach_scan_context
from growbin.scan.records import Scan
from growbin.settings import Settings
from growbin.topology import loader


@pytest.fixture
def make_settings(tmp_path):
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": SecretStr(f"sqlite:///{tmp_path / 'x.db'}"),
            "image_dir": str(tmp_path / "images"),
            "providers": "offline",
            # Nothing here may reach a real broker or Redis by accident.
            "broker_url": SecretStr("memory://"),
            "result_backend_url": SecretStr("cache+memory://"),
            **overrides,
        }
        return Settings(**values)

    return make


@pytest.fixture
def make_app(make_settings):
    contexts: list[ScanContext] = []

    def make(**overrides: Any):
        settings = make_settings(**overrides)
        app = create_app(
            settings,
            loader.load("production"),
            registrars=(external.register, analytics.register, cleanup.register),
        )
        ctx = ScanContext.build(settings, kv=MemoryKV())
        Base.metadata.create_all(ctx.engine, tables=[Scan.__table__, ScanDailyStat.__table__])
        attach_scan_context(app, ctx)
        contexts.append(ctx)
        return app, ctx

    yield make
    for ctx in contexts:
        ctx.engine.dispose()


@pytest.fixture
def app_ctx(make_app):
    return make_app()


@pytest.fixture
def app(app_ctx):
    return app_ctx[0]


@pytest.fixture
def ctx(app_ctx):
    return app_ctx[1]


@pytest.fixture
def dead_letters(monkeypatch):
    """Every dead letter a task would publish, as the keyword arguments it was given."""
    recorded: list[dict[str, Any]] = []

    def record(self, exc, **fields):
        recorded.append({"task": self.name, "exc": exc, **fields})

    monkeypatch.setattr(GrowbinTask, "dead_letter", record)
    return recorded


@pytest.fixture
def add_scan(ctx):
    """Insert a scan row; keyword arguments override the columns."""

    def add(
        created_at: datetime,
        status: str = "done",
        *,
        item: str | None = None,
        confidence: float | None = None,
        cached: bool | None = None,
        **columns: Any,
    ) -> Scan:
        scan_id = columns.pop("id", None) or uuid.uuid4().hex
        steps = {} if cached is None else {"classify": {"state": "done", "cached": cached}}
        scan = Scan(
            id=scan_id,
            owner="user-1",
            status=status,
            raw_key=f"scans/{scan_id}/raw.jpg",
            sha256=hashlib.sha256(scan_id.encode()).hexdigest(),
            item=item,
            category="recyclable" if item else None,
            confidence=confidence,
            steps=steps,
            created_at=created_at,
            updated_at=created_at,
            **columns,
        )
        with ctx.session() as session:
            session.add(scan)
        return scan

    return add
