"""Which operation is running: the id that makes a redelivered call "the same call".

The task base sets it to the Celery task id for the length of each run. A task id survives
redelivery, deferral and retry, and differs between two scans of the same photo, so an
idempotency key scoped by it dedupes exactly the repeats of one task, never two tasks.
Outside a task there is no redelivery and nothing is scoped (no idempotency key).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_operation: ContextVar[str | None] = ContextVar("growbin_operation", default=None)


def current_operation() -> str | None:
    return _operation.get()


@contextmanager
def operation(operation_id: str | None) -> Iterator[None]:
    token = _operation.set(operation_id)
    try:
        yield
    finally:
        _operation.reset(token)
