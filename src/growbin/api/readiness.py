"""Readiness: can this API do its job right now? Each dependency checked, timed, explained.

The checks run in parallel, each bounded by the readiness timeout. Targets are shown with
passwords masked, and error texts are scrubbed of anything that looks like URL credentials,
since /readyz answers without authentication.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis
from kombu import Connection
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from growbin.api.runtime import ApiRuntime
from growbin.db.engine import masked
from growbin.settings import mask_url
from growbin.topology.broker_api import BrokerApi
from growbin.topology.plan import ChangeKind, plan

# what apply would still have to do: the topology is not in force until these are empty
PENDING = frozenset(
    {ChangeKind.CREATE, ChangeKind.BIND, ChangeKind.UPDATE_POLICY, ChangeKind.NEEDS_MIGRATION}
)
_CREDENTIALS = re.compile(r"(\w+://[^/\s:@]*:)[^@\s]*@")


def scrub(message: str) -> str:
    return _CREDENTIALS.sub(r"\1****@", message)[:500]


def _broker(runtime: ApiRuntime, timeout: float) -> str | None:
    url = runtime.settings.broker_url.get_secret_value()
    with Connection(url, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=0, timeout=timeout)
    return None


def _redis(runtime: ApiRuntime, timeout: float) -> str | None:
    client = redis.Redis.from_url(
        runtime.settings.redis_url.get_secret_value(),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )
    try:
        client.ping()
    finally:
        client.close()
    return None


def _postgresql(runtime: ApiRuntime, timeout: float) -> str | None:
    with runtime.scans.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return None


def _topology(runtime: ApiRuntime, timeout: float) -> str | None:
    with BrokerApi(runtime.settings.rabbitmq_api_url.get_secret_value(), timeout=timeout) as api:
        current = plan(runtime.topology, api)
    pending = [c for c in current if c.kind in PENDING]
    if not pending:
        return None
    counts = Counter(f"{c.kind.value} {c.object_type}" for c in pending)
    summary = ", ".join(f"{n} x {what}" for what, n in counts.items())
    queues = [c.name for c in pending if c.object_type == "queue"][:4]
    named = f"; queues: {', '.join(queues)}" if queues else ""
    raise RuntimeError(
        f"the topology is not applied to vhost {runtime.topology.vhost}; run `growbin topology "
        f"apply` ({summary}{named})"
    )


def _targets(runtime: ApiRuntime) -> dict[str, str]:
    settings = runtime.settings
    api_url = mask_url(settings.rabbitmq_api_url.get_secret_value())
    return {
        "broker": mask_url(settings.broker_url.get_secret_value()),
        "redis": mask_url(settings.redis_url.get_secret_value()),
        "postgresql": masked(runtime.scans.engine.url),
        "topology": f"{api_url} (vhost {runtime.topology.vhost})",
    }


CHECKS: dict[str, Callable[[ApiRuntime, float], str | None]] = {
    "broker": _broker,
    "redis": _redis,
    "postgresql": _postgresql,
    "topology": _topology,
}


async def _run(
    name: str, check: Callable[[ApiRuntime, float], str | None], runtime: ApiRuntime
) -> dict[str, Any]:
    timeout = runtime.config.readiness_timeout
    started = time.monotonic()
    try:
        # the thread cannot be cancelled, but every check has its own timeouts as well
        await asyncio.wait_for(run_in_threadpool(check, runtime, timeout), timeout + 0.5)
        ok, detail = True, None
    except TimeoutError:
        ok, detail = False, f"no answer within {timeout:g} s"
    except Exception as exc:
        ok, detail = False, scrub(f"{type(exc).__name__}: {exc}")
    return {
        "ok": ok,
        "seconds": round(time.monotonic() - started, 4),
        "target": _targets(runtime)[name],
        "detail": detail,
    }


async def readiness(runtime: ApiRuntime) -> tuple[bool, dict[str, dict[str, Any]]]:
    names = list(CHECKS)
    results = await asyncio.gather(*(_run(n, CHECKS[n], runtime) for n in names))
    checks = dict(zip(names, results, strict=True))
    return all(c["ok"] for c in checks.values()), checks
