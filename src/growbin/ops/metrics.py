"""Prometheus metrics with the seeds' names, and the setters other components call.

Seed 004 section 6.1 names the task, WAL and GPT metrics; the rate-limiter and breaker gauges
are Growbin's own. Queue depth and consumers are *not* here: Prometheus reads them from
RabbitMQ's own exporter (``rabbitmq_queue_messages``, ``rabbitmq_queue_consumers``), so a queue
figure is never a worker's guess. Dead letters by reason come from the PostgreSQL archive
(:mod:`growbin.ops.metrics_cluster`).

The metrics live on one :class:`GrowbinMetrics` per process, made on first use, so that a
worker can switch prometheus_client to multiprocess mode (:mod:`growbin.ops.metrics_worker`)
before any value exists. The setters never raise: bookkeeping must not fail the caller.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

logger = logging.getLogger("growbin.metrics")

TASK_STATUSES = ("received", "started", "succeeded", "failed", "retried", "dead_lettered")
# seed 004 section 6.1
TASK_DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# the journal syncs every 300 s by default, so a healthy delay lies between 0 and a few minutes
WAL_SYNC_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class BreakerState:
    """Values of ``growbin_breaker_state``: higher is worse, so ``max`` over processes is
    the state an operator should see."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class GrowbinMetrics:
    """Every metric Growbin's processes export, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.tasks = Counter(
            "celery_tasks_total",
            "Celery tasks by outcome: received, started, succeeded, failed, retried, "
            "dead_lettered (a subset of failed)",
            ["worker", "task_name", "status"],
            registry=r,
        )
        self.task_duration = Histogram(
            "celery_task_duration_seconds",
            "Time a task ran, per execution (retried attempts included)",
            ["worker", "task_name", "queue"],
            buckets=TASK_DURATION_BUCKETS,
            registry=r,
        )
        # Gauges say how several processes' values combine in multiprocess mode: the latest
        # reading for shared state, the worst for a breaker.
        self.wal_pending = Gauge(
            "wal_pending_tasks",
            "Task records in the worker's WAL journal not yet synced to PostgreSQL",
            ["worker"],
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.wal_sync_delay = Histogram(
            "wal_sync_delay_seconds",
            "Age of a journal record when it reached PostgreSQL",
            ["worker"],
            buckets=WAL_SYNC_BUCKETS,
            registry=r,
        )
        self.gpt_calls = Counter(
            "gpt_api_calls_total",
            "Calls to an LLM or vision API by model and outcome",
            ["model", "status"],
            registry=r,
        )
        self.gpt_cache_hits = Counter(
            "gpt_cache_hits_total",
            "Classifications answered from the cache instead of the API",
            ["model"],
            registry=r,
        )
        self.ratelimit_tokens = Gauge(
            "growbin_ratelimit_tokens",
            "Tokens left in a global rate limiter's bucket at its last use",
            ["key"],
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.breaker_state = Gauge(
            "growbin_breaker_state",
            "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open",
            ["provider"],
            multiprocess_mode="livemax",
            registry=r,
        )

        # A worker's main process samples these (growbin.runtime.progress); prefork children
        # never set them, so the most recent live value is the worker's.
        self.worker_reserved = Gauge(
            "growbin_worker_reserved_tasks",
            "Messages a worker holds (prefetched or running), sampled by its main process",
            ["worker"],
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.worker_without_progress = Gauge(
            "growbin_worker_seconds_without_progress",
            "Seconds a worker has held reserved messages without finishing or starting a task "
            "(0 when it holds none)",
            ["worker"],
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.worker_stalled = Gauge(
            "growbin_worker_stalled",
            "1 when a worker has held reserved messages without progress for longer than its "
            "stall threshold (its profile's hard time limit + 60 s by default), else 0",
            ["worker"],
            multiprocess_mode="livemax",
            registry=r,
        )

    def names(self) -> set[str]:
        """Every sample name this registry can expose (for checking dashboards and rules)."""
        found: set[str] = set()
        for family in self.registry.collect():
            found.add(family.name)
            suffixes = {
                "counter": ("_total", "_created"),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
            }.get(family.type, ())
            found.update(family.name + s for s in suffixes)
        return found


_lock = threading.Lock()
_current: GrowbinMetrics | None = None
_identity = socket.gethostname()


def metrics() -> GrowbinMetrics:
    """This process's metrics, made on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = GrowbinMetrics()
        return _current


def reset_metrics() -> None:
    """Forget this process's metrics; the next use makes new ones (after a mode switch)."""
    global _current
    with _lock:
        _current = None


def set_identity(worker: str) -> None:
    """The ``worker`` label for values set outside a task (the Celery hostname, PROFILE@host)."""
    global _identity
    _identity = worker


def identity() -> str:
    return _identity


def set_wal_pending(pending: int, *, worker: str | None = None) -> None:
    """The journal reports how many of its records wait for the sync."""
    _safely(lambda: metrics().wal_pending.labels(worker or _identity).set(pending))


def observe_wal_sync_delay(seconds: float, *, worker: str | None = None) -> None:
    """The journal reports, per synced record, how long it waited in the WAL."""
    _safely(lambda: metrics().wal_sync_delay.labels(worker or _identity).observe(seconds))


def set_worker_progress(worker: str, reserved: int, without_progress: float, stalled: bool) -> None:
    """A worker's main process reports its progress sample (growbin.runtime.progress)."""

    def update() -> None:
        m = metrics()
        m.worker_reserved.labels(worker).set(reserved)
        m.worker_without_progress.labels(worker).set(round(without_progress, 1))
        m.worker_stalled.labels(worker).set(1 if stalled else 0)

    _safely(update)


def record_provider_call(model: str, status: str) -> None:
    """One call to an LLM or vision API; ``status`` from :func:`provider_call_status`."""
    _safely(lambda: metrics().gpt_calls.labels(model, status).inc())


def record_cache_hit(model: str) -> None:
    """A classification served from the cache: an API call saved."""
    _safely(lambda: metrics().gpt_cache_hits.labels(model).inc())


def set_ratelimit_tokens(key: str, tokens: float) -> None:
    _safely(lambda: metrics().ratelimit_tokens.labels(key).set(tokens))


def set_breaker_state(provider: str, state: int) -> None:
    """0 closed, 1 half-open, 2 open (:class:`BreakerState`)."""
    _safely(lambda: metrics().breaker_state.labels(provider).set(state))


class MetricsGuardObserver:
    """Plugs into :class:`growbin.guard.providers.Guards` (its ``observer``): every limiter
    decision sets ``growbin_ratelimit_tokens``, every breaker change ``growbin_breaker_state``."""

    STATES: ClassVar[dict[str, int]] = {
        "closed": BreakerState.CLOSED,
        "half_open": BreakerState.HALF_OPEN,
        "open": BreakerState.OPEN,
    }

    def limited(self, limit: str, decision: Any) -> None:
        set_ratelimit_tokens(limit, float(getattr(decision, "tokens", 0)))

    def breaker(self, provider: str, state: Any) -> None:
        set_breaker_state(provider, self.STATES.get(str(getattr(state, "value", state)), 0))


def provider_call_status(exc: BaseException | None) -> str:
    """A small, stable set of outcomes, so the label never explodes into messages."""
    from growbin.scan.providers import errors

    if exc is None:
        return "ok"
    for kind, status in (
        (errors.ProviderRateLimitedError, "rate_limited"),
        (errors.ProviderTimeoutError, "timeout"),
        (errors.ProviderUnavailableError, "unavailable"),
        (errors.ProviderOutputError, "invalid_output"),
        (errors.ProviderRefusedContentError, "refused"),
        (errors.ProviderRejectedError, "rejected"),
    ):
        if isinstance(exc, kind):
            return status
    return "error"


@contextmanager
def provider_call(model: str) -> Iterator[None]:
    """Count the call in the ``with`` block by its outcome (the exception is re-raised)."""
    try:
        yield
    except BaseException as exc:
        record_provider_call(model, provider_call_status(exc))
        raise
    record_provider_call(model, "ok")


def _safely(update: Callable[[], object]) -> None:
    try:
        update()
    except Exception:
        logger.exception("a metric update failed (ignored)")
