"""Metrics about the whole platform rather than one process, and the API's /metrics.

Dead letters by reason come from the PostgreSQL archive (``dead_letters``), which keeps every
dead letter even after q.dlq's drop-head cap pushed its message out; RabbitMQ only knows how
many messages q.dlq holds now. The archive is read at scrape time, so the API exposes it and
workers do not (every worker would report the same rows).

:func:`metrics_asgi_app` is what the API mounts (behind admin auth: the figures name tasks and
queues). :func:`metrics_payload` gives the same body for a route that wants to return it
itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.asgi import make_asgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from growbin.ops.metrics import metrics
from growbin.settings import Settings

logger = logging.getLogger("growbin.metrics")

# dead letters an operator still has to deal with; replayed and purged ones are history
OPEN_STATES = ("queued", "dropped")

ReasonCounts = Callable[[], Iterable[tuple[str, str, str, str, int]]]


def archive_counts(settings: Settings) -> ReasonCounts:
    """Rows of (vhost, dead-letter queue, reason, state, count) from the archive."""
    from sqlalchemy import func, select

    from growbin.db.engine import make_engine
    from growbin.db.models import DeadLetterRecord as R

    engine = make_engine(settings)
    query = select(R.vhost, R.dead_letter_queue, R.reason, R.state, func.count()).group_by(
        R.vhost, R.dead_letter_queue, R.reason, R.state
    )

    def read() -> Iterable[tuple[str, str, str, str, int]]:
        with engine.connect() as conn:
            return [
                (str(a), str(b), str(c), str(d), int(n)) for a, b, c, d, n in conn.execute(query)
            ]

    return read


class DeadLetterCollector(Collector):
    """``growbin_dead_letters{vhost,queue,reason,state}`` and whether the archive answered."""

    def __init__(self, counts: ReasonCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(
            "growbin_dead_letters",
            "Dead letters in the PostgreSQL archive by reason and state (queued and dropped "
            "still need an operator; replayed and purged are history)",
            labels=["vhost", "queue", "reason", "state"],
        )
        up = GaugeMetricFamily(
            "growbin_dead_letter_archive_up",
            "1 when the dead-letter archive could be read at this scrape",
        )
        try:
            rows = list(self.counts())
        except Exception as exc:
            # A scrape must still answer with everything else; the 0 says why a panel is empty.
            logger.warning("metrics: dead-letter archive unreadable: %s", exc)
            up.add_metric([], 0)
        else:
            for vhost, queue, reason, state, count in rows:
                family.add_metric([vhost, queue, reason, state], count)
            up.add_metric([], 1)
        yield family
        yield up


def api_registry(
    settings: Settings, *, counts: ReasonCounts | None = None, multiprocess_dir: Path | None = None
) -> CollectorRegistry:
    """This process's metrics (or, under several API processes, all of theirs) plus the
    archive's dead letters."""
    from growbin.ops.metrics_worker import MULTIPROC_ENV, LiveMultiProcessCollector

    registry = CollectorRegistry()
    shared = multiprocess_dir or (
        Path(os.environ[MULTIPROC_ENV]) if MULTIPROC_ENV in os.environ else None
    )
    if shared is not None:
        registry.register(LiveMultiProcessCollector(shared))
    else:
        registry.register(_Delegate(lambda: metrics().registry.collect()))
    registry.register(DeadLetterCollector(counts or archive_counts(settings)))
    return registry


class _Delegate(Collector):
    def __init__(self, collect: Callable[[], Iterable[Any]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Any]:
        return self._collect()


def metrics_asgi_app(settings: Settings, **options: Any) -> Callable[..., Any]:
    """An ASGI app serving /metrics; mount it behind the API's admin auth."""
    app: Callable[..., Any] = make_asgi_app(api_registry(settings, **options))
    return app


def metrics_payload(registry: CollectorRegistry) -> tuple[bytes, str]:
    """(body, content type) for a route that builds its own response."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
