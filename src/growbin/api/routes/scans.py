"""Scans: submit a photo, read a scan, follow it as events, list your own.

A scan that belongs to another key's owner answers exactly like one that does not exist
(404), so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from growbin.api.deps import Principal, Runtime, ScansUser
from growbin.api.events import scan_events
from growbin.api.problems import not_found
from growbin.api.runtime import ApiRuntime
from growbin.api.schemas import ErrorBody, RefusedBody, ScanAccepted, ScanPage, ScanView
from growbin.api.uploads import OPENAPI_BODY, read_submission
from growbin.scan import records
from growbin.scan.intake import Accepted, ScanRefusedError, submit_scan

router = APIRouter(prefix="/v1/scans", tags=["scans"])

ScanId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{32}$", description="the id POST /v1/scans returned")
]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no, malformed, unknown or revoked API key"},
    403: {"model": ErrorBody, "description": "the key lacks the `scans` scope"},
    429: {
        "model": ErrorBody,
        "description": "over a quota of this key (rate, scans in flight, open streams): "
        "see Retry-After and the RateLimit headers",
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such scan for this key's owner"}
}


def _own_scan(runtime: ApiRuntime, scan_id: str, owner: str) -> dict[str, Any] | None:
    with runtime.scans.session() as session:
        scan = records.get(session, scan_id)
        if scan is None or scan.owner != owner:
            return None
        return scan.as_dict()


def _submit(
    runtime: ApiRuntime, data: bytes, filename: str | None, hint: str | None, user: Principal
) -> Accepted:
    """Submit in this (worker) thread, which alone knows where a refused message went.

    The scan takes one of its key's in-flight slots first (429 when they are all taken: nothing
    is stored or queued); a scan that is not accepted gives its slot back.
    """
    scan_id = uuid.uuid4().hex
    hold = runtime.quotas.hold_tasks(
        user.key_prefix,
        user.quotas,
        [f"scan:{scan_id}"],
        runtime.finished,
        retry_after=runtime.config.retry_after,
    )
    try:
        return submit_scan(
            runtime.celery,
            runtime.scans,
            data,
            filename=filename,
            hint=hint,
            owner=user.owner,
            scan_id=scan_id,
        )
    except ScanRefusedError as exc:
        hold.release()
        cause = exc.__cause__ or exc
        raise runtime.refusals.explain(cause, scan_id=exc.scan_id) from exc
    except BaseException:
        hold.release()
        raise


@router.post(
    "",
    status_code=202,
    response_model=ScanAccepted,
    summary="Submit a photo (multipart upload or image URL)",
    openapi_extra=OPENAPI_BODY,
    responses={
        **ERRORS,
        413: {"model": ErrorBody, "description": "body or image too large"},
        415: {"model": ErrorBody, "description": "not a JPEG, PNG or WebP image"},
        422: {"model": ErrorBody, "description": "a bad image, form or URL"},
        503: {
            "model": RefusedBody,
            "description": "not accepted (the broker refused it, or Redis is down): "
            "nothing was queued",
        },
    },
)
async def create_scan(request: Request, user: ScansUser, runtime: Runtime) -> ScanAccepted:
    """Accepted (202) only once RabbitMQ has confirmed the pipeline's first message."""
    upload = await read_submission(request, runtime.fetcher)
    accepted = await run_in_threadpool(
        _submit,
        runtime,
        upload.data,
        upload.filename,
        upload.hint,
        user,
    )
    status_url = request.app.url_path_for("get_scan", scan_id=accepted.scan_id)
    events_url = request.app.url_path_for("scan_events", scan_id=accepted.scan_id)
    return ScanAccepted(
        scan_id=accepted.scan_id, status_url=str(status_url), events_url=str(events_url)
    )


@router.get("", response_model=ScanPage, summary="Your scans, newest first", responses=ERRORS)
def list_scans(
    user: ScansUser,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    with runtime.scans.session() as session:
        items = [
            s.as_dict()
            for s in records.list_for_owner(session, user.owner, limit=limit, offset=offset)
        ]
    return {
        "items": items,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(items) == limit else None,
    }


@router.get(
    "/{scan_id}",
    response_model=ScanView,
    summary="A scan: status, per-step progress, and the result when done",
    responses={**ERRORS, **NOT_FOUND},
)
def get_scan(scan_id: ScanId, user: ScansUser, runtime: Runtime) -> dict[str, Any]:
    found = _own_scan(runtime, scan_id, user.owner)
    if found is None:
        raise not_found("scan")
    return found


@router.get(
    "/{scan_id}/events",
    name="scan_events",
    summary="Follow a scan as server-sent events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "events: snapshot, step, status, end (see the API docs)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **ERRORS,
        **NOT_FOUND,
    },
)
async def scan_events_stream(
    scan_id: ScanId, user: ScansUser, runtime: Runtime
) -> StreamingResponse:
    """The steps' states as they change, then the final scan; a comment every 15 s."""
    owner = user.owner
    if await run_in_threadpool(_own_scan, runtime, scan_id, owner) is None:
        raise not_found("scan")

    async def load() -> dict[str, Any] | None:
        return await run_in_threadpool(_own_scan, runtime, scan_id, owner)

    config = runtime.config
    hold = await run_in_threadpool(
        runtime.quotas.open_stream, user.key_prefix, user.quotas, config.retry_after
    )

    async def stream() -> AsyncIterator[str]:
        try:
            async for chunk in scan_events(
                load,
                poll=config.sse_poll_interval,
                heartbeat=config.sse_heartbeat,
                max_seconds=config.sse_max_seconds,
            ):
                yield chunk
        finally:
            # synchronous (one quick Redis command): an await here could be cancelled with the
            # stream, and the slot would stay taken until it expires
            hold.release()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        # no caching, and no buffering by a reverse proxy (nginx honours X-Accel-Buffering)
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
