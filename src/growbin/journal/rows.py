"""A task event as a journal row, and the order that keeps rows from going back in time.

Events of one task reach the journal out of order: ``received`` is written by the worker's main
process, the rest by the pool process that ran the task, each through its own batching writer.
A later write must never undo an earlier, more advanced one, so every row carries a rank:
``retry_count * 10 + stage``, with the stages retrying < pending < running < failed <
completed. An upsert only takes the incoming status when its rank is at least the stored one;
the same rule guards the PostgreSQL upsert, where two workers' journals can hold the same task
(a redelivery after a crash). A success is final within its attempt: a copy of the same attempt
that failed elsewhere (a message held through an outage, dead-lettered, then redelivered and
run) cannot hide it, whichever journal syncs last; the dead-letter sync relies on that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from growbin.runtime.hooks import TaskEvent

PENDING = "pending"
RUNNING = "running"
RETRYING = "retrying"
COMPLETED = "completed"
FAILED = "failed"

STAGES = {RETRYING: 0, PENDING: 1, RUNNING: 2, FAILED: 3, COMPLETED: 4}
FINISHED = (COMPLETED, FAILED)
PAYLOAD_LIMIT = 8 * 1024  # bytes of JSON; a bigger payload is summarised, not stored


def rank(status: str, retry_count: int) -> int:
    return retry_count * 10 + STAGES[status]


@dataclass(frozen=True)
class JournalRow:
    task_id: str
    task_name: str
    status: str
    retry_count: int
    worker: str | None = None
    queue: str | None = None
    payload: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    error: str | None = None

    @property
    def rank(self) -> int:
        return rank(self.status, self.retry_count)


def row_from_event(kind: str, event: TaskEvent) -> JournalRow:
    """The row an event writes. ``kind`` is the hook's name (received, started, ...)."""
    common: dict[str, Any] = {
        "task_id": event.task_id,
        "task_name": event.task_name,
        "worker": event.worker,
        "queue": event.queue,
    }
    if kind == "received":
        return JournalRow(
            **common,
            status=PENDING,
            retry_count=event.retries,
            payload=payload_json(event),
            created_at=event.at,
        )
    if kind == "started":
        # a row may begin here (the received event is written by another process); the
        # payload comes with that one
        return JournalRow(
            **common,
            status=RUNNING,
            retry_count=event.retries,
            created_at=event.at,
            started_at=event.at,
        )
    started = event.at - event.runtime if event.runtime is not None else None
    if kind == "retried":
        # the next attempt is already published; it will arrive with retries + 1
        return JournalRow(
            **common, status=RETRYING, retry_count=event.retries + 1, error=event.error
        )
    if kind == "succeeded":
        return JournalRow(
            **common,
            status=COMPLETED,
            retry_count=event.retries,
            started_at=started,
            completed_at=event.at,
        )
    if kind == "failed":
        return JournalRow(
            **common,
            status=FAILED,
            retry_count=event.retries,
            started_at=started,
            completed_at=event.at,
            error=event.error,
        )
    raise ValueError(f"unknown task event {kind!r}: expected received, started, retried, ...")


def payload_json(event: TaskEvent) -> str:
    text = json.dumps({"args": list(event.args), "kwargs": event.kwargs}, default=repr)
    if len(text) > PAYLOAD_LIMIT:
        return json.dumps({"truncated": True, "bytes": len(text), "head": text[:512]})
    return text
