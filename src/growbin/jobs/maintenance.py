"""Operations tasks on the beat schedule."""

from __future__ import annotations

from typing import Any

from celery import Celery

from growbin.runtime.task_base import settings_of, topology_of
from growbin.settings import Settings
from growbin.topology.model import Topology


def sync_dead_letters(
    settings: Settings, topology: Topology, *, queue_name: str | None = None
) -> dict[str, Any]:
    """Archive the dead-letter queue, then bring every open scan it concerns to its end.

    Archiving closes dead letters whose task id succeeded since (``superseded``); then
    :func:`growbin.scan.reconcile.reconcile_scans` fails the scans that a dead letter or the
    stall bound says will never end (their own hook could not mark them). Both the beat's
    ``growbin.ops.dlq_sync`` and ``growbin dlq sync`` run this.
    """
    from growbin.db.engine import session_factory, translate_errors
    from growbin.ops.deadletters.service import DeadLetterService
    from growbin.scan.reconcile import reconcile_scans

    with DeadLetterService(settings, topology, queue_name=queue_name) as service:
        counts = service.sync()
        with translate_errors(service.engine), session_factory(service.engine).begin() as session:
            scans = reconcile_scans(session, topology, settings, scope=service.scope)
    return {
        "queue": service.scope.dead_letter_queue,
        "vhost": service.scope.vhost,
        "in_queue": counts.in_queue,
        "new": counts.new,
        "dropped": counts.dropped,
        "superseded": counts.superseded,
        "scans_failed": scans.failed,
        "scans_stalled": scans.stalled,
        "stall_bound": scans.stall_bound,
        "by_state": counts.by_state,
    }


def register(app: Celery) -> None:
    @app.task(name="growbin.ops.dlq_sync", shared=False)  # type: ignore[untyped-decorator]
    def dlq_sync() -> dict[str, Any]:
        """Archive every message in the dead-letter queue in PostgreSQL; reconcile scans.

        Run often enough that the queue's drop-head cap cannot drop a dead letter before it is
        archived (the presets: every 60 s against a cap of 10,000). The same run fails scans
        whose failure could not be recorded when their step died (see sync_dead_letters).
        """
        return sync_dead_letters(settings_of(app), topology_of(app))
