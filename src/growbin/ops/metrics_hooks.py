"""Task metrics as task hooks: every event of :class:`growbin.runtime.hooks.SignalAdapter`
becomes a ``celery_tasks_total`` sample, and every finished execution a duration.

``dead_lettered`` is counted on the ``failed`` event: :class:`growbin.runtime.task_base.GrowbinTask`
publishes a task to its queue's dead-letter exchange on every final failure (a fatal error, spent
retries, a hard time limit) before Celery reports the failure, unless the route has no
dead-letter exchange. So a failure of a task whose route dead-letters is a dead letter. The one
case this miscounts is a dead-letter publish that itself fails (the broker went away); then the
dead-letter queue's depth, which Prometheus reads from RabbitMQ, is the figure to trust.
"""

from __future__ import annotations

from celery import Celery

from growbin.ops.metrics import GrowbinMetrics, identity, metrics
from growbin.runtime.hooks import BaseHooks, TaskEvent
from growbin.topology.model import Topology
from growbin.topology.resolve import resolve_route


class MetricsHooks(BaseHooks):
    """Counts task events on this process's metrics (or on ``target``, for tests)."""

    def __init__(self, topology: Topology, target: GrowbinMetrics | None = None) -> None:
        self.topology = topology
        self._target = target
        self._dead_letters: dict[str, bool] = {}

    @classmethod
    def for_app(cls, app: Celery, target: GrowbinMetrics | None = None) -> MetricsHooks:
        from growbin.runtime.task_base import topology_of

        return cls(topology_of(app), target)

    @property
    def target(self) -> GrowbinMetrics:
        # resolved per call: a worker's pool process must write to its own multiprocess files
        return self._target if self._target is not None else metrics()

    def _count(self, event: TaskEvent, status: str) -> None:
        worker = event.worker or identity()
        self.target.tasks.labels(worker, event.task_name, status).inc()

    def _timed(self, event: TaskEvent) -> None:
        if event.runtime is None:
            return
        worker = event.worker or identity()
        self.target.task_duration.labels(worker, event.task_name, event.queue or "").observe(
            event.runtime
        )

    def received(self, event: TaskEvent) -> None:
        self._count(event, "received")

    def started(self, event: TaskEvent) -> None:
        self._count(event, "started")

    def retried(self, event: TaskEvent) -> None:
        self._count(event, "retried")
        self._timed(event)

    def succeeded(self, event: TaskEvent) -> None:
        self._count(event, "succeeded")
        self._timed(event)

    def failed(self, event: TaskEvent) -> None:
        self._count(event, "failed")
        self._timed(event)
        if self._dead_letters_on_failure(event.task_name):
            self._count(event, "dead_lettered")

    def _dead_letters_on_failure(self, task_name: str) -> bool:
        known = self._dead_letters.get(task_name)
        if known is None:
            route = resolve_route(self.topology, task_name)
            known = route is not None and route.dead_letter_exchange is not None
            self._dead_letters[task_name] = known
        return known
