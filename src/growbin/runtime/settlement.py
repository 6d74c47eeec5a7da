"""Every delivery ends in an ack or a reject, even when Celery cannot record a task's outcome.

Celery's tracer writes a task's state to the result backend after the body ran (SUCCESS,
FAILURE, RETRY). When that write fails (Redis down past the backend's retries), the tracer
raises "outside body"; the prefork pool reports that to the worker, but the threads pool drops
it (its ``apply_target`` re-raises into a future nobody reads, and ``error_callback`` is never
called), so the request is never acked: the message stays unacked and its prefetch slot is
lost until the worker restarts. Celery's ``result_backend_always_retry`` cannot close this gap
either: retries end, or block a pool slot for ever.

:func:`guard_tracer` wraps the tracer of every Growbin task (``GrowbinTask.__trace__``) and
turns such an escape into an outcome the worker's request handler settles:

- the task's fate was already published (a dead letter, or the retry copy: see
  :func:`mark_settled`): ``Ignore``, so the delivery is acked. Only the result backend's record
  is missing; the dead letter or the retry carries on.
- otherwise (the body succeeded, or a dead letter could not be published): ``Reject`` with
  requeue, so RabbitMQ delivers the message again; the task runs again (tasks are idempotent),
  and a queue's delivery limit dead-letters a message that keeps failing this way.

The wrapper runs where the tracer runs (a pool thread, a prefork child), so the ledger of
settled task ids is per process.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from billiard.einfo import ExceptionInfo
from celery.app.trace import TraceInfo, trace_ok_t
from celery.exceptions import Ignore, Reject
from celery.states import FAILURE

logger = logging.getLogger("growbin.tasks")

Tracer = Callable[..., Any]

# Task ids whose outcome is published and whose trace has not ended yet: one per running task,
# so a small bound is plenty; the oldest entries go first if a trace never ended.
_MAX_SETTLED = 10_000
_settled: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()


def mark_settled(task_id: str | None) -> None:
    """Record that this delivery's fate is published (a dead letter, a retry or a deferral)."""
    if not task_id:
        return
    with _lock:
        _settled[task_id] = None
        _settled.move_to_end(task_id)
        while len(_settled) > _MAX_SETTLED:
            _settled.popitem(last=False)


def _take_settled(task_id: str) -> bool:
    with _lock:
        return _settled.pop(task_id, 0) is None


def guard_tracer(task: Any, tracer: Tracer | None) -> Tracer | None:
    """``tracer`` (from Celery's ``build_tracer``), made to always return an outcome."""
    if tracer is None or getattr(tracer, "growbin_guarded", False):
        return tracer

    def guarded(uuid: str, args: Any, kwargs: Any, request: Any = None) -> Any:
        try:
            return tracer(uuid, args, kwargs, request)
        except (Reject, MemoryError):
            raise  # Celery's own outcome: the worker handles it
        except Exception as exc:
            return _settle(task, uuid, exc)
        finally:
            _take_settled(uuid)

    guarded.growbin_guarded = True  # type: ignore[attr-defined]
    return guarded


def _settle(task: Any, task_id: str, exc: Exception) -> Any:
    published = _take_settled(task_id)
    cause = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    outcome: Exception
    if published:
        logger.error(
            "task %s[%s]: its outcome was published, but Celery could not record it in the "
            "result backend (%s); acking the message. Check the result backend (Redis).",
            task.name,
            task_id,
            cause,
        )
        outcome = Ignore()
    else:
        logger.error(
            "task %s[%s]: Celery could not record its outcome in the result backend (%s); "
            "returning the message to its queue to run again. Check the result backend (Redis).",
            task.name,
            task_id,
            cause,
        )
        outcome = Reject(f"result backend write failed: {cause}", requeue=True)
    try:
        raise outcome from exc
    except (Ignore, Reject):
        einfo = ExceptionInfo(internal=True)
    return trace_ok_t(einfo, TraceInfo(FAILURE, outcome), 0.0, None)
