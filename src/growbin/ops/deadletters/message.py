"""The values the dead-letter tools pass around: a raw AMQP message and the dead letter in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Origin(StrEnum):
    GROWBIN = "growbin"  # a worker gave up and said why (the x-growbin-death header)
    BROKER = "broker"  # RabbitMQ dead-lettered it (x-death): TTL, overflow, delivery limit...
    UNROUTABLE = "unroutable"  # no binding matched; the alternate exchange kept it
    UNKNOWN = "unknown"  # published to the dead-letter exchange by hand, with neither header


NOT_A_TASK = "(not a task)"
UNROUTABLE_REASON = "unroutable"
UNKNOWN_REASON = "unknown"


@dataclass(frozen=True)
class RawMessage:
    """A message as read from the queue: body bytes, AMQP properties, headers, delivery info.

    ``exchange`` and ``routing_key`` are where the message was last published (for a dead letter:
    the dead-letter exchange and key, not the task's original route).
    """

    body: bytes
    properties: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    exchange: str = ""
    routing_key: str = ""


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter: why it died and the whole original message, ready to archive or replay.

    ``exchange`` and ``routing_key`` are the task's original route (where a replay goes);
    ``queue`` is the work queue it died in.
    """

    dead_letter_id: str
    origin: Origin
    dead_letter_queue: str
    task_id: str
    task_name: str
    reason: str
    exchange: str
    routing_key: str
    queue: str
    attempts: int
    dead_lettered_at: datetime
    message: RawMessage
    first_failure: datetime | None = None
    last_failure: datetime | None = None
    exception_type: str = ""
    exception_message: str = ""
    traceback: str = ""
    retryable: bool | None = None
    worker: str = ""

    @property
    def content_type(self) -> str:
        return str(self.message.properties.get("content_type") or "")

    @property
    def content_encoding(self) -> str:
        return str(self.message.properties.get("content_encoding") or "")
