"""The beat's journal tasks. Each acts on the journal of the worker that runs it.

Every worker also syncs and checkpoints its own journal on a timer (see maintenance.py), so a
journal whose worker never takes these messages is still synced.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from growbin.journal.maintenance import run_checkpoint, run_sync
from growbin.runtime.task_base import settings_of


def register(app: Celery) -> None:
    @app.task(name="growbin.journal.sync", bind=True, shared=False)  # type: ignore[untyped-decorator]
    def journal_sync(self: Any) -> dict[str, Any]:
        """Upsert this worker's pending journal rows into PostgreSQL's task_history."""
        config = settings_of(app).journal
        if not config.enabled:
            return {"status": "disabled", "rows": 0}
        result = run_sync(settings_of(app), config, self.request.hostname)
        return {"status": result.status, "rows": result.rows, "error": result.error}

    @app.task(name="growbin.journal.checkpoint", bind=True, shared=False)  # type: ignore[untyped-decorator]
    def journal_checkpoint(self: Any) -> dict[str, Any]:
        """PRAGMA wal_checkpoint(TRUNCATE) on this worker's journal, after pruning old rows."""
        config = settings_of(app).journal
        if not config.enabled:
            return {"status": "disabled"}
        checkpoint, pruned = run_checkpoint(config, self.request.hostname)
        return {
            "busy": checkpoint.busy,
            "wal_bytes_before": checkpoint.wal_bytes_before,
            "wal_bytes_after": checkpoint.wal_bytes_after,
            "pruned": pruned,
        }
