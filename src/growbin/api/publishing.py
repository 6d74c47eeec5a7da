"""Publishing from the API: a refusal by the broker becomes a 503 with a reason, never a 202.

The Celery app publishes with publisher confirms, so a publish returns only once RabbitMQ has
taken the message. What can go wrong, and the reason the client is given:

- RabbitMQ nacks the message (a queue at max-length with ``overflow: reject-publish``):
  amqp raises ``MessageNacked``; kombu counts it as recoverable, retries, and finally raises
  ``kombu.exceptions.OperationalError`` from it -> ``broker_nack``.
- RabbitMQ is down or unreachable: connection errors, then ``OperationalError`` once the retry
  policy is spent -> ``broker_unavailable``.
- No answer in time: no confirm within the read timeout (a broker blocked by a memory or disk
  alarm) or no connection within the connect timeout -> ``broker_timeout``.
- A task name with no route in the topology -> ``unrouted`` (a deployment bug, still not 202).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from amqp.exceptions import MessageNacked

from growbin.errors import GrowbinError
from growbin.runtime.celery_app import UnroutedTaskError

REASONS = {
    "broker_nack": "the broker refused the message: a queue is full (reject-publish) or "
    "cannot take it now",
    "broker_unavailable": "the broker cannot be reached",
    "broker_timeout": "the broker did not answer in time",
    "unrouted": "the task has no route in the topology",
    "publish_failed": "the message could not be published",
}


class PublishRefusedError(GrowbinError):
    """The broker did not take a message; nothing was accepted."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        self.reason = reason
        text = REASONS.get(reason, reason)
        if cause is not None:
            text += f" ({type(cause).__name__}: {str(cause)[:200] or 'no detail'})"
        super().__init__(f"{text}. Nothing was queued; send it again later")


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


@contextmanager
def refused_as_error() -> Iterator[None]:
    """Turn any publish failure into :class:`PublishRefusedError`."""
    try:
        yield
    except PublishRefusedError:
        raise
    except Exception as exc:
        raise PublishRefusedError(refusal_reason(exc), exc) from exc
