"""The Celery app factory: everything Celery needs is derived from the topology and settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import Exchange as KombuExchange
from kombu import Queue as KombuQueue
from kombu import binding as kombu_binding

from growbin.errors import GrowbinError, TopologyLintError
from growbin.runtime.task_base import GrowbinTask, attach_platform
from growbin.settings import Settings
from growbin.topology.declare import (
    DELAY_EXCHANGE,
    DELAY_EXCHANGE_TYPE,
    EXCHANGE_AUTO_DELETE,
    QUEUE_AUTO_DELETE,
    QUEUE_DURABLE,
    delay_routing_key,
    queue_arguments,
)
from growbin.topology.findings import Severity
from growbin.topology.lint import lint
from growbin.topology.loader import LoadedTopology
from growbin.topology.model import QueueRole, Topology
from growbin.topology.resolve import resolve_route

TaskRegistrar = Callable[[Celery], None]
# Result backend (Redis) connection: seconds before a call gives up, and about how many seconds
# a write keeps retrying a lost connection (one retry a second).
RESULT_SOCKET_TIMEOUT = 5.0
RESULT_RETRY_SECONDS = 10


class UnroutedTaskError(GrowbinError):
    """A task name has no route in the topology, so publishing it would lose it."""


def create_app(
    settings: Settings,
    loaded: LoadedTopology,
    *,
    registrars: tuple[TaskRegistrar, ...] = (),
    rabbitmq_version: str = "3.13",
) -> Celery:
    """Build a Celery app. Refuses a topology with lint errors, naming each one."""
    findings = lint(loaded, rabbitmq_version=rabbitmq_version)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        listing = "\n  ".join(str(f) for f in errors)
        raise TopologyLintError(
            f"topology {loaded.source} has {len(errors)} lint error(s); fix them before "
            f"starting (run `growbin topology lint`):\n  {listing}",
            findings=list(errors),
        )
    topology = loaded.topology
    app = Celery(f"growbin-{topology.name}", set_as_current=False, task_cls=GrowbinTask)
    app.conf.update(celery_config(settings, topology))
    attach_platform(app, settings, topology)
    for register in registrars:
        register(app)
    return app


def celery_config(settings: Settings, topology: Topology) -> dict[str, Any]:
    default_queue = _default_queue(topology)
    return {
        "broker_url": settings.broker_url.get_secret_value(),
        "result_backend": settings.result_backend(),
        "broker_connection_timeout": settings.broker_connect_timeout,
        "broker_connection_retry_on_startup": True,
        # A publish returns only once the broker has taken the message (or raises on a nack).
        "broker_transport_options": {"confirm_publish": True},
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Scan steps record their own progress; Celery's STARTED state would cost every task one
        # more write to the result backend (measured: a large share of a no-op task's cost).
        "task_track_started": False,
        "result_extended": True,
        # A result write retries a lost Redis connection for about RESULT_RETRY_SECONDS (Celery's
        # own default is ~19 s, hidden), and a Redis that stops answering fails a call after
        # seconds instead of blocking a pool slot for ever (redis-py's default: no timeout).
        # A write that still fails does not strand the message: growbin.runtime.settlement
        # acks or requeues it.
        "redis_socket_connect_timeout": RESULT_SOCKET_TIMEOUT,
        "redis_socket_timeout": RESULT_SOCKET_TIMEOUT,
        "result_backend_transport_options": {
            "retry_policy": {
                "max_retries": RESULT_RETRY_SECONDS,
                "interval_start": 0,
                "interval_step": 1,
                "interval_max": 1,
            }
        },
        "task_queues": kombu_queues(topology),
        "task_routes": (TopologyRouter(topology),),
        "task_annotations": (RouteTimeLimits(topology),),
        # Routes name their queue; an unknown queue is a bug, not something to create quietly.
        "task_create_missing_queues": False,
        # Celery's own route-less tasks (celery.*) go to the first work queue. The default
        # exchange would otherwise be a direct exchange named after that queue, declared by
        # every worker and bound to every queue: it names the delay exchange instead.
        "task_default_queue": default_queue,
        "task_default_exchange": DELAY_EXCHANGE,
        "task_default_exchange_type": DELAY_EXCHANGE_TYPE.value,
        "task_default_routing_key": delay_routing_key(default_queue),
        "worker_detect_quorum_queues": True,
        "worker_send_task_events": False,
        # Dead-letters (never acks away) a message that is no task it can run.
        "worker_consumer": "growbin.runtime.unprocessable:UnprocessableConsumer",
        "enable_utc": True,
        "timezone": "UTC",
    }


class TopologyQueue(KombuQueue):  # type: ignore[misc]
    """A kombu queue that keeps its exchange next to its bindings, also in its bound copies.

    kombu drops the exchange of a queue that has bindings, and every channel-bound copy (the
    worker's consumer, Celery's delayed-delivery step) is rebuilt that way. A publisher declares
    the original, which Celery has given its default exchange by then, the consumer a copy
    without it; and without an exchange Celery's delayed-delivery step binds the queue's own
    bindings again, with ``#.`` in front, on the work exchanges. This queue keeps the delay
    exchange in every copy, so that each declaration is the same and the delay step uses only
    the delay exchange (kombu ``bind_queue_to_native_delayed_delivery_exchange`` prefers a
    queue's exchange to its bindings).
    """

    def __init__(
        self,
        name: str = "",
        exchange: KombuExchange | None = None,
        routing_key: str = "",
        channel: Any = None,
        bindings: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, None, routing_key, None, bindings, **kwargs)
        if exchange is not None:
            self.exchange = exchange
        self.maybe_bind(channel)


def kombu_queues(topology: Topology) -> list[KombuQueue]:
    """Queues as Celery declares them: exactly the objects `topology apply` creates.

    Each queue carries the file's bindings, the fixed arguments apply declares, and the delay
    exchange as its kombu exchange, with its own name as key (see
    :mod:`growbin.topology.declare`). A queue without an exchange of its own would get Celery's
    default one (by default a direct exchange named after the default queue, which every
    publish would declare and bind to every queue); and Celery binds each queue to its kombu
    exchange with ``#.<routing key>`` for native delayed delivery, which must not be a work
    exchange, and must be a topic or fanout exchange for countdowns to take that path at all.
    """
    exchanges = {
        name: KombuExchange(
            name, type=ex.type.value, durable=ex.durable, auto_delete=EXCHANGE_AUTO_DELETE
        )
        for name, ex in topology.exchanges.items()
    }
    delay = KombuExchange(
        DELAY_EXCHANGE,
        type=DELAY_EXCHANGE_TYPE.value,
        durable=True,
        auto_delete=EXCHANGE_AUTO_DELETE,
    )
    queues: list[KombuQueue] = []
    for name, queue in topology.queues.items():
        bindings = [
            kombu_binding(exchanges[b.exchange], routing_key=b.routing_key)
            for b in queue.bindings
            if b.exchange in exchanges
        ]
        queues.append(
            TopologyQueue(
                name,
                exchange=delay,
                routing_key=delay_routing_key(name),
                bindings=bindings,
                durable=QUEUE_DURABLE,
                auto_delete=QUEUE_AUTO_DELETE,
                queue_arguments=queue_arguments(queue),
            )
        )
    return queues


def _default_queue(topology: Topology) -> str:
    for name, queue in topology.queues.items():
        if queue.role is QueueRole.WORK:
            return name
    return next(iter(topology.queues), "celery")


class TopologyRouter:
    """Celery router: task name -> exchange, routing key, queue and priority from the topology.

    A growbin task without a route raises instead of falling back to a default queue, where it
    would wait for a consumer that never comes.
    """

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def __call__(
        self, name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
    ) -> dict[str, Any] | None:
        if self.topology.route_for(name) is None:
            if name.startswith("celery."):
                return None
            known = ", ".join(sorted(self.topology.routes)) or "(none)"
            raise UnroutedTaskError(
                f"task {name!r} has no route in topology {self.topology.name!r}: add it under "
                f"`routes:` in the topology file (known routes: {known})"
            )
        resolved = resolve_route(self.topology, name)
        assert resolved is not None
        result: dict[str, Any] = {
            "exchange": resolved.exchange,
            "exchange_type": self.topology.exchanges[resolved.exchange].type.value,
            "routing_key": resolved.routing_key,
        }
        if resolved.queue is not None:
            result["queue"] = resolved.queue
        if resolved.priority is not None:
            result["priority"] = resolved.priority
        return result


class RouteTimeLimits:
    """Celery task annotation: a route's own time limits override the worker profile's."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def annotate(self, task: Any) -> dict[str, Any] | None:
        found = self.topology.route_for(task.name)
        if found is None:
            return None
        _, route = found
        limits = {"time_limit": route.time_limit, "soft_time_limit": route.soft_time_limit}
        return {k: v for k, v in limits.items() if v is not None} or None
