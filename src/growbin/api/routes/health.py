"""Liveness and readiness, for load balancers and orchestrators (no key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from growbin.api.deps import Runtime, authenticate
from growbin.api.problems import ApiError, unauthorized
from growbin.api.readiness import readiness
from growbin.api.runtime import ApiRuntime
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
async def readyz(runtime: Runtime, request: Request) -> JSONResponse:
    """Broker, Redis, PostgreSQL and the applied topology: 200 ready, 503 not ready.

    No key is needed, and without an admin key the answer is the status alone. Sent with an
    admin key (`Authorization: Bearer <key>`), `checks` gives each dependency's latency and
    target and explains it: what failed and the fix, differences between the live vhost and
    the topology, and whether Redis persists its data.
    """
    header = request.headers.get("authorization")
    detail = await run_in_threadpool(_is_admin, runtime, header)
    ok, checks = await readiness(runtime)
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready"}
    if detail:
        body["checks"] = checks
    return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})


def _is_admin(runtime: ApiRuntime, header: str | None) -> bool:
    if not header:
        return False
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized("send the key as `Authorization: Bearer <key>`")
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=key.strip())
    try:
        principal = authenticate(runtime, credentials)
    except ApiError:
        raise
    except Exception:
        # the keys live in PostgreSQL: when it is down, answer (without detail) all the same
        return False
    return "admin" in principal.scopes
