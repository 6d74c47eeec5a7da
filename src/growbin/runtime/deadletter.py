"""Dead letters that explain themselves: the header a worker adds, and how reasons are named.

A dead letter Growbin makes (a task failed for good, or a message that is no runnable task at all,
see :mod:`growbin.runtime.unprocessable`) is the original message, body and headers unchanged,
published to the queue's dead-letter exchange with one more header, ``x-growbin-death``, holding a
:class:`DeathInfo`. A dead letter RabbitMQ makes (TTL expiry, overflow, delivery limit,
a reject) carries RabbitMQ's ``x-death`` header instead; :func:`reason_from_x_death` names it.
"""

from __future__ import annotations

import traceback as tb
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

DEATH_HEADER = "x-growbin-death"
MAX_TRACEBACK_CHARS = 8000
MAX_MESSAGE_CHARS = 2000


class DeathReason(StrEnum):
    FAILED = "failed"  # the task raised: a fatal error, or a transient one past its retries
    EXPIRED = "expired"  # message TTL ran out in the queue
    OVERFLOWED = "overflowed"  # max-length reached with drop-head / reject-publish-dlx
    REJECTED = "rejected"  # a consumer rejected it without requeue
    DELIVERY_LIMIT = "delivery-limit"  # redelivered more often than the quorum queue allows
    # A message no worker could run, dead-lettered by the worker that received it:
    UNDECODABLE = "undecodable"  # the body does not decode with its content type
    CONTENT_DISALLOWED = "content_disallowed"  # a content type workers refuse (pickle, YAML)
    UNREGISTERED = "unregistered"  # a well-formed task whose name this worker does not know
    MALFORMED = "malformed"  # missing or invalid Celery headers, or a body of the wrong shape


# Dead letters that are not a task any worker can run: a replay would only dead-letter them again.
# An unregistered task is not among them: it may run once a worker that knows it is deployed.
NOT_RUNNABLE = frozenset(
    {DeathReason.UNDECODABLE, DeathReason.CONTENT_DISALLOWED, DeathReason.MALFORMED}
)


_X_DEATH_REASONS = {
    "expired": DeathReason.EXPIRED,
    "maxlen": DeathReason.OVERFLOWED,
    "rejected": DeathReason.REJECTED,
    "delivery_limit": DeathReason.DELIVERY_LIMIT,
}


def reason_from_x_death(reason: str) -> DeathReason:
    """RabbitMQ's x-death reason (expired, maxlen, rejected, delivery_limit) as ours."""
    return _X_DEATH_REASONS.get(reason, DeathReason.REJECTED)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class DeathInfo:
    """Why a task died, as carried in the ``x-growbin-death`` header (an AMQP table)."""

    reason: str
    task: str
    task_id: str
    exchange: str
    routing_key: str
    queue: str
    attempts: int
    first_failure: str
    last_failure: str
    exception_type: str
    exception_message: str
    traceback: str
    retryable: bool
    worker: str
    dead_letter_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    dead_lettered_at: str = field(default_factory=now_iso)

    def as_header(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_header(cls, value: dict[str, Any]) -> DeathInfo:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in value.items() if k in known})


def describe_exception(exc: BaseException) -> tuple[str, str, str]:
    """(qualified type, bounded message, bounded traceback) of an exception."""
    kind = type(exc)
    qualified = f"{kind.__module__}.{kind.__qualname__}"
    message = str(exc)[:MAX_MESSAGE_CHARS]
    text = "".join(tb.format_exception(kind, exc, exc.__traceback__))
    if len(text) > MAX_TRACEBACK_CHARS:
        # keep the end: the frame that raised matters more than the outer ones
        text = "...\n" + text[-MAX_TRACEBACK_CHARS:]
    return qualified, message, text
