"""``GET /metrics``: the API's Prometheus metrics, for admin keys only.

On the API's own port, behind the admin scope (Prometheus sends the key as a bearer token:
``deploy/prometheus/prometheus.yml``): the figures name tasks, queues and dead-letter reasons,
which are nobody else's business. The registry (this process's metrics, or every API process's
under multiprocess mode, plus the dead-letter archive's counts) is built on the first scrape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from growbin.api.deps import Admin, Runtime
from growbin.api.runtime import ApiRuntime
from growbin.api.schemas import ErrorBody

router = APIRouter(tags=["admin"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no, malformed, unknown or revoked API key"},
    403: {"model": ErrorBody, "description": "the key lacks the `admin` scope"},
    429: {"model": ErrorBody, "description": "over this key's admin rate"},
}


def _payload(runtime: ApiRuntime) -> tuple[bytes, str]:
    from growbin.ops.metrics_cluster import api_registry, metrics_payload

    if runtime.metrics_registry is None:
        runtime.metrics_registry = api_registry(runtime.settings)
    return metrics_payload(runtime.metrics_registry)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **ERRORS,
    },
)
async def metrics(_: Admin, runtime: Runtime) -> Response:
    """Prometheus metrics: this API's, and dead letters by reason from the archive."""
    body, content_type = await run_in_threadpool(_payload, runtime)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
