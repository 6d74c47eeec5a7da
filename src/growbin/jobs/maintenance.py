"""Operations tasks on the beat schedule."""

from __future__ import annotations

from typing import Any

from celery import Celery

from growbin.runtime.task_base import settings_of, topology_of


def register(app: Celery) -> None:
    @app.task(name="growbin.ops.dlq_sync", shared=False)  # type: ignore[untyped-decorator]
    def dlq_sync() -> dict[str, Any]:
        """Archive every message in the dead-letter queue in PostgreSQL.

        Run often enough that the queue's drop-head cap cannot drop a dead letter before it is
        archived (the presets: every 60 s against a cap of 10,000).
        """
        from growbin.ops.deadletters.service import DeadLetterService

        with DeadLetterService(settings_of(app), topology_of(app)) as service:
            counts = service.sync()
        return {"in_queue": counts.in_queue, "new": counts.new, "dropped": counts.dropped}
