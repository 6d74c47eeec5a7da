"""Tables. Every model module is imported here so Alembic's autogenerate sees all of them.

Later issues add their tables (scans, API keys) in this module or in modules imported from it,
each with its own migration under ``migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Index, Text, false, func, text
from sqlalchemy.orm import Mapped, mapped_column

from growbin.db.base import Base


class DeadLetterState(StrEnum):
    """Where a dead letter's message is, as far as the archive knows.

    queued: in the dead-letter queue at the last sync. replayed: published back to a work
    exchange and removed from the queue. purged: removed on purpose after archiving. dropped:
    gone from the queue without a replay or purge (the queue's drop-head cap pushed it out, or
    someone removed it by hand); the archived body can still be replayed. superseded: the same
    task id succeeded after it was dead-lettered (a redelivered copy ran), so the dead letter is
    stale; the sync removes its message and replay refuses it.
    """

    QUEUED = "queued"
    REPLAYED = "replayed"
    PURGED = "purged"
    DROPPED = "dropped"
    SUPERSEDED = "superseded"


class DeadLetterRecord(Base):
    """One dead letter, archived from the dead-letter queue: why it died and the whole message."""

    __tablename__ = "dead_letters"

    dead_letter_id: Mapped[str] = mapped_column(Text, primary_key=True)
    # where the dead letter is held: the broker vhost and the dead-letter (or unroutable) queue
    vhost: Mapped[str] = mapped_column(Text)
    dead_letter_queue: Mapped[str] = mapped_column(Text)
    # growbin: a worker gave up on the task; broker: RabbitMQ dead-lettered it; unroutable:
    # no binding matched and the alternate exchange kept it
    origin: Mapped[str] = mapped_column(Text)

    task_id: Mapped[str] = mapped_column(Text)
    task_name: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    exchange: Mapped[str] = mapped_column(Text)
    routing_key: Mapped[str] = mapped_column(Text)
    queue: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int]
    first_failure: Mapped[datetime | None]
    last_failure: Mapped[datetime | None]
    exception_type: Mapped[str] = mapped_column(Text, server_default="")
    exception_message: Mapped[str] = mapped_column(Text, server_default="")
    traceback: Mapped[str] = mapped_column(Text, server_default="")
    retryable: Mapped[bool | None]
    worker: Mapped[str] = mapped_column(Text, server_default="")

    headers: Mapped[dict[str, Any]]
    properties: Mapped[dict[str, Any]]
    # the original body; a body that is not UTF-8 is kept as base64 (body_base64 true)
    body: Mapped[str] = mapped_column(Text)
    body_base64: Mapped[bool] = mapped_column(server_default=false())
    content_type: Mapped[str] = mapped_column(Text, server_default="")
    content_encoding: Mapped[str] = mapped_column(Text, server_default="")

    state: Mapped[str] = mapped_column(Text, server_default=DeadLetterState.QUEUED.value)
    dead_lettered_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[datetime | None]
    replay_count: Mapped[int] = mapped_column(server_default=text("0"))
    last_replayed_at: Mapped[datetime | None]
    last_replayed_to: Mapped[str | None] = mapped_column(Text)
    # when the task id's later success was recorded, and what proved it
    superseded_at: Mapped[datetime | None]
    superseded_by: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'replayed', 'purged', 'dropped', 'superseded')",
            name="state_known",
        ),
        Index(None, "task_name"),
        Index(None, "queue"),
        Index(None, "reason"),
        Index(None, "state"),
        Index(None, "dead_lettered_at"),
        Index(None, "vhost", "dead_letter_queue", "state"),
    )

    def __repr__(self) -> str:
        return (
            f"DeadLetterRecord({self.dead_letter_id!r}, task={self.task_name!r}, "
            f"reason={self.reason!r}, state={self.state!r})"
        )


# Tables that live with their domain; imported here so Alembic sees them.
from growbin.api.keys_records import ApiKey  # noqa: E402
from growbin.jobs.stats_records import ScanDailyStat  # noqa: E402
from growbin.journal.records import TaskHistory  # noqa: E402
from growbin.scan.records import Scan  # noqa: E402

__all__ = ["ApiKey", "DeadLetterRecord", "DeadLetterState", "Scan", "ScanDailyStat", "TaskHistory"]
