"""Operations, for keys with the admin scope: the queues, and the dead-letter tools."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from growbin.api import queues
from growbin.api.deps import Admin, Runtime
from growbin.api.runtime import ApiRuntime
from growbin.api.schemas import (
    NO_CONTROL,
    DeadLetterSummary,
    ErrorBody,
    QueuesView,
    ReplayRequest,
    ReplayView,
)
from growbin.ops.deadletters import view
from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.service import DeadLetterService

router = APIRouter(prefix="/v1/admin", tags=["admin"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no, malformed, unknown or revoked API key"},
    403: {"model": ErrorBody, "description": "the key lacks the `admin` scope"},
    503: {"model": ErrorBody, "description": "RabbitMQ or PostgreSQL cannot be reached"},
}
Text = Annotated[str | None, Query(max_length=255, pattern=NO_CONTROL)]
Age = Annotated[
    str | None, Query(max_length=20, pattern=NO_CONTROL, description="e.g. 30m, 2h, 1d")
]
QueueName = Annotated[
    str | None,
    Query(
        max_length=255,
        pattern=NO_CONTROL,
        description="default: the topology's dead-letter queue; q.unroutable for unroutable",
    ),
]


def _service(runtime: ApiRuntime, queue_name: str | None) -> DeadLetterService:
    # the API's engine is shared: the service must not dispose of it
    return DeadLetterService(
        runtime.settings, runtime.topology, queue_name=queue_name, engine=runtime.scans.engine
    )


def _filter(
    task: str | None,
    queue: str | None,
    reason: str | None,
    exception: str | None,
    state: list[str] | None,
    older_than: str | None,
    newer_than: str | None,
) -> DeadLetterFilter:
    return DeadLetterFilter.from_options(
        task=task,
        queue=queue,
        reason=reason,
        exception=exception,
        states=state,
        older_than=older_than,
        newer_than=newer_than,
    )


@router.get("/queues", response_model=QueuesView, responses=ERRORS)
def queue_overview(_: Admin, runtime: Runtime) -> dict[str, Any]:
    """Depth, consumers and rates of the topology's queues (from the management API)."""
    rows = queues.overview(
        runtime.topology,
        runtime.settings.rabbitmq_api_url.get_secret_value(),
        timeout=runtime.config.readiness_timeout,
    )
    return {"vhost": runtime.topology.vhost, "queues": rows}


@router.get("/dlq", response_model=list[DeadLetterSummary], responses=ERRORS)
def dead_letters(
    _: Admin,
    runtime: Runtime,
    task: Text = None,
    queue: Text = None,
    reason: Text = None,
    exception: Text = None,
    state: Annotated[
        list[str] | None,
        Query(max_length=10, description="queued, dropped, replayed, purged, superseded, all"),
    ] = None,
    older_than: Age = None,
    newer_than: Age = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    queue_name: QueueName = None,
) -> list[dict[str, Any]]:
    """Sync the dead-letter queue into the archive, then list, newest first (nothing removed)."""
    flt = _filter(task, queue, reason, exception, state, older_than, newer_than)
    with _service(runtime, queue_name) as service:
        return [view.summary(r) for r in service.list(flt, limit=limit)]


@router.get(
    "/dlq/{dead_letter_id}",
    response_model=dict[str, Any],
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "no such dead letter"}},
)
def dead_letter(
    dead_letter_id: Annotated[str, Path(pattern=r"^[0-9A-Za-z_-]{6,128}$")],
    _: Admin,
    runtime: Runtime,
    queue_name: QueueName = None,
) -> dict[str, Any]:
    """Everything about one dead letter (id or a unique 6+ character prefix)."""
    with _service(runtime, queue_name) as service:
        return view.detail(service.show(dead_letter_id))


@router.post(
    "/dlq/replay",
    response_model=ReplayView,
    responses={**ERRORS, 422: {"model": ErrorBody, "description": "say what to replay"}},
)
def replay(
    request: ReplayRequest, _: Admin, runtime: Runtime, queue_name: QueueName = None
) -> dict[str, Any]:
    """Replay by ids, by filters or all; each is acked only after RabbitMQ confirmed it.

    A chosen dead letter that is not replayed comes back under ``skipped`` with ``why``: one
    replayed already, or one ``superseded`` (its task id succeeded after it was dead-lettered,
    so a replay would run it a second time).
    """
    flt = _filter(
        request.task,
        request.queue,
        request.reason,
        request.exception,
        request.state,
        request.older_than,
        request.newer_than,
    )
    with _service(runtime, queue_name) as service:
        report = service.replay(
            request.ids, flt=None if flt.is_empty() else flt, replay_all=request.all, to=request.to
        )
    return {
        "replayed": [asdict(item) for item in report.replayed],
        "skipped": [{"dead_letter_id": i, "why": why} for i, why in report.skipped],
    }
