"""The FastAPI application factory.

``create_api`` wires routes, limits and error handling; the runtime (Celery app, database
engine, Redis, scan context) is built by the lifespan when the server starts, once, so importing
this module or building the app for its OpenAPI document touches no service. The lifespan then
compares the broker URL's vhost with the topology and refuses to start on a difference
(:mod:`growbin.topology.verify`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from growbin.api import problems
from growbin.api.config import ApiConfig
from growbin.api.console import install_console
from growbin.api.fetch import Resolver
from growbin.api.limits import BodySizeLimit
from growbin.api.quotas import RateLimitHeaders
from growbin.api.routes import admin, health, metrics, root, scans, seed
from growbin.api.runtime import ApiRuntime
from growbin.errors import GrowbinError
from growbin.settings import Settings
from growbin.topology.loader import LoadedTopology
from growbin.topology.verify import verify_before_start
from growbin.topology.vhost import bind_vhost

log = logging.getLogger(__name__)

DESCRIPTION = """\
Growbin sorts waste from a photo. `POST /v1/scans` answers at once with a scan id; the scan
then runs as a pipeline of tasks (preprocess, classify, rules, guidance, save) and
`GET /v1/scans/{id}` or its event stream shows it progress to the result.

**Accepted means queued.** 202 is answered only after RabbitMQ confirmed the message. When the
broker refuses it (a full queue, an outage) the answer is 503 with `Retry-After` and a
`reason`, and nothing was queued.

**Keys.** Every endpoint but `/healthz` and `/readyz` needs `Authorization: Bearer <key>`
(`growbin apikey create`). A scan belongs to its key's owner; other owners get 404 for it.
`/v1/admin/*` and `/metrics` need the `admin` scope. `/readyz` answers anyone with its
status alone; only an admin key gets each check (latency, target, failure, fix).

**Quotas.** Each key has a request rate (over all routes, and per route family: submit, read,
events, admin), a cap on its scans and tasks in flight, and on its open event streams. Over
one: 429 with `Retry-After` and `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`,
`RateLimit-Policy`; nothing is queued. Accepted requests carry the same RateLimit fields.

**Errors** are `{"error": code, "detail": message}`.
"""

TAGS = [
    {"name": "scans", "description": "Submit photos and follow their scans."},
    {
        "name": "tasks (seed 003)",
        "description": "Solo, chain and group tasks; results 200 done, 202 in progress, "
        "404 unknown, 500 failed.",
    },
    {"name": "admin", "description": "Queues and dead letters; needs the admin scope."},
    {"name": "health", "description": "Liveness and readiness; no key needed."},
]


def _version() -> str:
    try:
        return version("growbin")
    except PackageNotFoundError:
        return "0.0.0"


def create_api(
    settings: Settings,
    loaded_topology: LoadedTopology,
    *,
    config: ApiConfig | None = None,
    resolver: Resolver | None = None,
) -> FastAPI:
    """The API for these settings and topology. ``resolver`` replaces DNS (tests)."""
    cfg = config or ApiConfig.from_settings(settings)
    # a topology naming another vhost than the broker URL is refused here, before serving
    loaded_topology = bind_vhost(loaded_topology, settings.broker_url.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await run_in_threadpool(
            ApiRuntime.start, settings, loaded_topology, cfg, resolver=resolver
        )
        try:
            # the API publishes to every route: the whole topology must be in force
            await run_in_threadpool(
                verify_before_start, settings, runtime.topology, queues=None, who="growbin api"
            )
        except GrowbinError as exc:
            log.error("%s", exc)
            await run_in_threadpool(runtime.close)
            raise
        app.state.runtime = runtime
        try:
            yield
        finally:
            app.state.runtime = None
            await run_in_threadpool(runtime.close)

    app = FastAPI(
        title="Growbin API",
        version=_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(RateLimitHeaders)
    # added last, so it runs first: an oversized or too slow body is refused before anything
    # reads it
    app.add_middleware(BodySizeLimit, max_bytes=cfg.max_body_bytes, read_timeout=cfg.body_timeout)
    problems.install(app, retry_after=cfg.retry_after)
    routers = (scans.router, seed.router, admin.router, metrics.router, health.router)
    for router in (*routers, root.router):
        app.include_router(router)
    install_console(app)  # /console: the operations console, for admin keys
    return app
