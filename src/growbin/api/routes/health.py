"""Liveness and readiness, for load balancers and orchestrators (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from growbin.api.deps import Runtime
from growbin.api.readiness import readiness
from growbin.api.schemas import Liveness, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Liveness)
def healthz() -> Liveness:
    """The process answers. Touches no dependency, so a broker outage never restarts the API."""
    return Liveness(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a dependency failed its check"}},
)
async def readyz(runtime: Runtime) -> JSONResponse:
    """Broker, Redis, PostgreSQL and the applied topology, each with its latency."""
    ok, checks = await readiness(runtime)
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})
