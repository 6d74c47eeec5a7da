"""Readiness: can this API do its job right now? Each dependency checked, timed, explained.

The checks run in parallel, each bounded by the readiness timeout. Anyone may ask; only a
caller with an admin key gets the checks themselves, with their targets and explanations, and
even then passwords are masked and error texts scrubbed of every URL credential
(:func:`growbin.settings.mask_text`). Everyone else gets the status alone: which services sit
behind the API, and how fast each answers, is not theirs to know.

The topology check is the start check of :mod:`growbin.topology.verify`, repeated on every
call: someone deleting a policy or adding a binding while the API runs shows here.
"""

from __future__ import annotations

import asyncio
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
from growbin.errors import ServiceUnavailableError
from growbin.settings import mask_text, mask_url
from growbin.topology.broker_api import BrokerApi
from growbin.topology.changes import Change
from growbin.topology.model import Topology
from growbin.topology.verify import APPLY_HINT, TopologyDriftError, drift, unreachable

SHOWN_CHANGES = 4
PERSISTENCE_FIX = (
    "set `appendonly yes` (AOF) in production: without it a Redis restart loses accepted "
    "results (/result answers 404 for completed work), idempotency keys and the beat lock"
)


def scrub(message: str) -> str:
    return mask_text(message)[:500]


def _broker(runtime: ApiRuntime, timeout: float) -> str | None:
    url = runtime.settings.broker_url.get_secret_value()
    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=0, timeout=timeout)
    except Exception as exc:
        raise ServiceUnavailableError(
            "RabbitMQ",
            mask_url(url),
            str(exc) or type(exc).__name__,
            fix="start RabbitMQ (or wait until it is up) and check GROWBIN_BROKER_URL",
        ) from None
    return None


def redis_persistence(client: redis.Redis) -> str | None:
    """None when Redis keeps its data across a restart with AOF; else what is at stake.

    Asks ``CONFIG GET appendonly`` and ``CONFIG GET save``; managed services often disable
    CONFIG (renamed, or refused by an ACL), and then the answer is that nobody knows.
    """
    try:
        appendonly = _config_value(client, "appendonly")
        save = _config_value(client, "save")
    except redis.ResponseError as exc:
        return (
            f"whether Redis persists is unknown: CONFIG GET is disabled here ({exc}); "
            f"check with its operator, and {PERSISTENCE_FIX}"
        )
    if appendonly == "yes":
        return None
    if save.strip():
        return (
            f"Redis persists only by RDB snapshots (appendonly no, save {save!r}): a crash loses "
            f"what was written since the last one; {PERSISTENCE_FIX}"
        )
    return f"Redis does not persist (appendonly no, save ''): {PERSISTENCE_FIX}"


def _config_value(client: redis.Redis, name: str) -> str:
    answer: Any = client.config_get(name)
    value = answer.get(name, answer.get(name.encode(), "")) if isinstance(answer, dict) else ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _redis(runtime: ApiRuntime, timeout: float) -> str | None:
    client = redis.Redis.from_url(
        runtime.settings.redis_url.get_secret_value(),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )
    try:
        client.ping()
        return redis_persistence(client)
    finally:
        client.close()


def _postgresql(runtime: ApiRuntime, timeout: float) -> str | None:
    with runtime.scans.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return None


def _topology(runtime: ApiRuntime, timeout: float) -> str | None:
    topology = runtime.topology
    try:
        with BrokerApi(
            runtime.settings.rabbitmq_api_url.get_secret_value(), timeout=timeout
        ) as api:
            changes = drift(topology, api)
    except ServiceUnavailableError as exc:
        raise unreachable(runtime.settings, exc, "/readyz", timeout=timeout) from None
    if changes:
        raise TopologyDriftError(drift_summary(topology, changes), changes)
    return None


def drift_summary(topology: Topology, changes: list[Change]) -> str:
    counts = Counter(f"{c.kind.value} {c.object_type}" for c in changes)
    summary = ", ".join(f"{n} x {what}" for what, n in counts.items())
    shown = "; ".join(c.render()[0] for c in changes[:SHOWN_CHANGES])
    more = f"; ... ({len(changes) - SHOWN_CHANGES} more)" if len(changes) > SHOWN_CHANGES else ""
    # the fix first: scrub() cuts long texts, and the listing is the part that may go
    return (
        f"vhost {topology.vhost!r} differs from topology {topology.name!r} ({summary}); "
        f"fix: {APPLY_HINT} (`growbin topology plan` shows every difference): {shown}{more}"
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
        note = await asyncio.wait_for(run_in_threadpool(check, runtime, timeout), timeout + 0.5)
        ok, detail = True, None if note is None else scrub(note)
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
    """Whether every check passed, and each check (for admins only: see the module doc)."""
    names = list(CHECKS)
    results = await asyncio.gather(*(_run(n, CHECKS[n], runtime) for n in names))
    checks = dict(zip(names, results, strict=True))
    return all(c["ok"] for c in checks.values()), checks
