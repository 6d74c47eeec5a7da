"""Publishing from the API: a refusal becomes a 503 that names what failed and the fix, never a 202.

The Celery app publishes with publisher confirms, so a publish returns only once RabbitMQ has
taken the message. What can go wrong, and the reason the client is given:

- RabbitMQ nacks the message (a queue at max-length with ``overflow: reject-publish``):
  amqp raises ``MessageNacked``; kombu counts it as recoverable, retries, and finally raises
  ``kombu.exceptions.OperationalError`` from it -> ``broker_nack``, naming the full queue (found
  from the topology and the routing key of the message being sent) and its limit.
- RabbitMQ is down or unreachable: connection errors, then ``OperationalError`` once the retry
  policy is spent -> ``broker_unavailable``.
- No answer in time: no confirm within the read timeout (a broker blocked by a memory or disk
  alarm) or no connection within the connect timeout -> ``broker_timeout``.
- Redis, where states, results and issued ids are kept, cannot be reached (checked before
  anything is published) -> ``result_store_unavailable``. Redis is not the broker.
- A task name with no route in the topology -> ``unrouted`` (a deployment bug, still not 202).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from amqp.exceptions import MessageNacked
from celery.signals import before_task_publish

from growbin.api.result_store import ResultStoreUnavailableError
from growbin.errors import GrowbinError
from growbin.runtime.celery_app import UnroutedTaskError
from growbin.service_hints import start_service_hint
from growbin.settings import Environment
from growbin.topology.matching import resolve
from growbin.topology.model import Overflow, Topology

REASONS = {
    "broker_nack": "the broker refused the message: a queue is full (reject-publish) or "
    "cannot take it now",
    "broker_unavailable": "the broker (RabbitMQ) cannot be reached",
    "broker_timeout": "the broker (RabbitMQ) did not answer in time",
    "result_store_unavailable": "Redis, where task states and results are kept, cannot be reached",
    "unrouted": "the task has no route in the topology",
    "publish_failed": "the message could not be published",
}
FIXES = {
    "broker_timeout": "check RabbitMQ's memory and disk alarms (`rabbitmq-diagnostics alarms`): "
    "a broker under an alarm blocks publishers",
    "broker_nack": "the queue's workers are behind or not running: start or scale them, or raise "
    "the queue's max_length in the topology and run `growbin topology apply`",
    "unrouted": "add a route for the task to the topology and restart the API",
}
# 503s whose cause is the broker keep the code clients already know
BROKER_REASONS = frozenset({"broker_nack", "broker_unavailable", "broker_timeout"})


@dataclass(frozen=True)
class Destination:
    """Where a task message was sent: its task name, exchange and routing key."""

    task: str
    exchange: str
    routing_key: str


class PublishRefusedError(GrowbinError):
    """A message was not taken; nothing was accepted."""

    def __init__(
        self,
        reason: str,
        cause: BaseException | None = None,
        *,
        what: str | None = None,
        fix: str | None = None,
        queue: str | None = None,
        scan_id: str | None = None,
    ) -> None:
        self.reason = reason
        self.queue = queue
        self.scan_id = scan_id
        text = what or REASONS.get(reason, reason)
        if cause is not None and what is None:
            text += f" ({type(cause).__name__}: {str(cause)[:200] or 'no detail'})"
        if scan_id is not None:
            text = f"scan {scan_id} was not accepted: {text}"
        text += ". Nothing was queued; send it again later"
        if fix:
            text += f". Fix: {fix}"
        super().__init__(text)

    @property
    def code(self) -> str:
        """The body's ``error``: ``broker_refused`` when the broker said no, else not_accepted."""
        return "broker_refused" if self.reason in BROKER_REASONS else "not_accepted"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def refusal_reason(exc: BaseException) -> str:
    """The client-facing reason for a failed publish, from the exception and its causes."""
    chain = list(_chain(exc))
    if any(isinstance(e, ResultStoreUnavailableError) for e in chain):
        return "result_store_unavailable"
    if any(isinstance(e, MessageNacked) for e in chain):
        return "broker_nack"
    if any(isinstance(e, UnroutedTaskError) for e in chain):
        return "unrouted"
    if any(isinstance(e, socket.timeout | TimeoutError) for e in chain):
        return "broker_timeout"
    if any(isinstance(e, OSError | ConnectionError) for e in chain):
        return "broker_unavailable"
    # kombu's OperationalError is a ConnectionError; anything else is reported as is
    return "publish_failed"


_last = threading.local()


def _remember(
    sender: object = None, exchange: object = None, routing_key: object = None, **_: Any
) -> None:
    name = getattr(exchange, "name", exchange)
    _last.destination = Destination(str(sender), str(name or ""), str(routing_key or ""))


def remember_destinations() -> None:
    """Remember, per thread, where each task message is sent, so a nack can name its queue.

    A nack says nothing about the queue; the thread that published knows what it sent.
    Connected once per process (the API's); connecting again does nothing.
    """
    before_task_publish.connect(_remember, weak=False, dispatch_uid="growbin.api.destinations")


def last_destination() -> Destination | None:
    found = getattr(_last, "destination", None)
    return found if isinstance(found, Destination) else None


def _full_queues(topology: Topology, destination: Destination) -> list[tuple[str, str]]:
    """(queue, how it is full) for each queue the message reaches that refuses when full."""
    found = []
    for name in resolve(topology, destination.exchange, destination.routing_key):
        queue = topology.queues[name]
        if queue.overflow not in (Overflow.REJECT_PUBLISH, Overflow.REJECT_PUBLISH_DLX):
            continue
        limits = [f"max_length {queue.max_length}"] if queue.max_length is not None else []
        if queue.max_length_bytes is not None:
            limits.append(f"max_length_bytes {queue.max_length_bytes}")
        found.append((name, ", ".join([*limits, f"overflow {queue.overflow.value}"])))
    return found


def _nack(
    cause: BaseException,
    topology: Topology | None,
    destination: Destination | None,
    scan_id: str | None,
) -> PublishRefusedError:
    full = _full_queues(topology, destination) if topology and destination else []
    if not full or topology is None:
        return PublishRefusedError("broker_nack", cause, fix=FIXES["broker_nack"], scan_id=scan_id)
    names = ", ".join(name for name, _ in full)
    what = "the broker refused the message: " + "; ".join(
        f"queue {name} is full ({limits})" for name, limits in full
    )
    profiles = sorted({p for name, _ in full for p in topology.profiles_consuming(name)})
    workers = (
        " or ".join(f"`growbin worker --profile {p}`" for p in profiles)
        if profiles
        else "a worker that consumes it (no profile in the topology does)"
    )
    fix = (
        f"{names} is not drained fast enough: start or scale {workers}, or raise its max_length "
        "in the topology and run `growbin topology apply`"
    )
    return PublishRefusedError("broker_nack", what=what, fix=fix, queue=full[0][0], scan_id=scan_id)


def explain(
    exc: BaseException,
    *,
    topology: Topology | None = None,
    env: Environment = Environment.DEVELOPMENT,
    destination: Destination | None = None,
    scan_id: str | None = None,
) -> PublishRefusedError:
    """The refusal for a failed publish: what failed (the service, the full queue) and the fix.

    ``destination`` defaults to the last message this thread sent; call this in the thread
    that published.
    """
    if isinstance(exc, PublishRefusedError):
        return exc
    reason = refusal_reason(exc)
    if reason == "broker_nack":
        return _nack(exc, topology, destination or last_destination(), scan_id)
    if reason == "result_store_unavailable":
        store = next(e for e in _chain(exc) if isinstance(e, ResultStoreUnavailableError))
        what = f"{REASONS[reason]} ({store.reason[:200]})"
        return PublishRefusedError(reason, what=what, fix=store.fix, scan_id=scan_id)
    fix = (
        start_service_hint(env, "RabbitMQ", "GROWBIN_BROKER_URL")
        if reason == "broker_unavailable"
        else FIXES.get(reason)
    )
    return PublishRefusedError(reason, exc, fix=fix, scan_id=scan_id)


@dataclass(frozen=True)
class Refusals:
    """What a refusal needs to name the full queue and a fix for this environment."""

    topology: Topology | None = None
    env: Environment = Environment.DEVELOPMENT

    def guard(self) -> AbstractContextManager[None]:
        return refused_as_error(self.topology, self.env)

    def explain(self, exc: BaseException, scan_id: str | None = None) -> PublishRefusedError:
        return explain(exc, topology=self.topology, env=self.env, scan_id=scan_id)


@contextmanager
def refused_as_error(
    topology: Topology | None = None, env: Environment = Environment.DEVELOPMENT
) -> Iterator[None]:
    """Turn any publish failure into :class:`PublishRefusedError`."""
    try:
        yield
    except PublishRefusedError:
        raise
    except Exception as exc:
        raise explain(exc, topology=topology, env=env) from exc
