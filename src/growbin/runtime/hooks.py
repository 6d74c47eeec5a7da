"""One adapter that connects Celery's task signals once and fans them out to typed hooks.

The journal, the metrics and anything else that follows a task's life implement
:class:`TaskHooks` (every method optional: subclass :class:`BaseHooks`) and are installed with
:func:`install_hooks`. Signals fire in the process that runs the task (a prefork child, a thread
of the threads pool) except ``received``, which fires in the worker's main process.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from celery import Celery, signals

logger = logging.getLogger("growbin.hooks")


@dataclass(frozen=True)
class TaskEvent:
    """What every hook gets: enough to file, count or log the event without Celery objects."""

    task_id: str
    task_name: str
    queue: str | None
    routing_key: str | None
    worker: str | None
    retries: int
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    runtime: float | None = None  # seconds, on succeeded/failed
    error: str | None = None  # "Type: message" on retried/failed


class TaskHooks(Protocol):
    def received(self, event: TaskEvent) -> None: ...
    def started(self, event: TaskEvent) -> None: ...
    def retried(self, event: TaskEvent) -> None: ...
    def succeeded(self, event: TaskEvent) -> None: ...
    def failed(self, event: TaskEvent) -> None: ...


class BaseHooks:
    """No-op hooks: subclass and override what you need."""

    def received(self, event: TaskEvent) -> None:
        return None

    def started(self, event: TaskEvent) -> None:
        return None

    def retried(self, event: TaskEvent) -> None:
        return None

    def succeeded(self, event: TaskEvent) -> None:
        return None

    def failed(self, event: TaskEvent) -> None:
        return None


class SignalAdapter:
    """Connects Celery's signals for one app (weakly, by sender app) and calls each hook.

    A hook that raises is logged and skipped: bookkeeping must never fail a task.
    """

    def __init__(self, app: Celery, hooks: list[TaskHooks]) -> None:
        self.app = app
        self.hooks = hooks
        self._started: dict[str, float] = {}

    def connect(self) -> None:
        signals.task_received.connect(self._on_received, weak=False)
        signals.task_prerun.connect(self._on_prerun, weak=False)
        signals.task_retry.connect(self._on_retry, weak=False)
        signals.task_success.connect(self._on_success, weak=False)
        signals.task_failure.connect(self._on_failure, weak=False)

    def disconnect(self) -> None:
        signals.task_received.disconnect(self._on_received)
        signals.task_prerun.disconnect(self._on_prerun)
        signals.task_retry.disconnect(self._on_retry)
        signals.task_success.disconnect(self._on_success)
        signals.task_failure.disconnect(self._on_failure)

    def _emit(self, method: str, event: TaskEvent) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, method)(event)
            except Exception:
                logger.exception("task hook %s.%s failed", type(hook).__name__, method)

    def _mine(self, task: Any) -> bool:
        return getattr(task, "app", None) is self.app

    def _on_received(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        task = getattr(request, "task", None)
        if request is None or not self._mine(task):
            return
        info = request.delivery_info or {}
        self._emit(
            "received",
            TaskEvent(
                task_id=request.id,
                task_name=request.name,
                queue=_queue(task, info),
                routing_key=info.get("routing_key"),
                worker=getattr(request, "hostname", None),
                retries=int(getattr(request, "_request_dict", {}).get("retries", 0) or 0),
                args=tuple(request.args or ()),
                kwargs=dict(request.kwargs or {}),
            ),
        )

    def _event(self, task: Any, task_id: str, **extra: Any) -> TaskEvent:
        request = task.request
        info = request.delivery_info or {}
        return TaskEvent(
            task_id=task_id,
            task_name=task.name,
            queue=_queue(task, info),
            routing_key=info.get("routing_key"),
            worker=request.hostname,
            retries=int(request.retries or 0),
            args=tuple(request.args or ()),
            kwargs=dict(request.kwargs or {}),
            **extra,
        )

    def _on_prerun(self, sender: Any = None, task_id: str = "", task: Any = None, **_: Any) -> None:
        if not self._mine(task):
            return
        self._started[task_id] = time.monotonic()
        self._emit("started", self._event(task, task_id))

    def _runtime(self, task_id: str) -> float | None:
        started = self._started.pop(task_id, None)
        return None if started is None else time.monotonic() - started

    def _on_retry(
        self, sender: Any = None, request: Any = None, reason: Any = None, **_: Any
    ) -> None:
        if not self._mine(sender) or request is None:
            return
        self._emit(
            "retried",
            self._event(
                sender, request.id, runtime=self._runtime(request.id), error=_error(reason)
            ),
        )

    def _on_success(self, sender: Any = None, **_: Any) -> None:
        if not self._mine(sender):
            return
        task_id = sender.request.id
        self._emit("succeeded", self._event(sender, task_id, runtime=self._runtime(task_id)))

    def _on_failure(
        self, sender: Any = None, task_id: str = "", exception: Any = None, **_: Any
    ) -> None:
        if not self._mine(sender):
            return
        self._emit(
            "failed",
            self._event(sender, task_id, runtime=self._runtime(task_id), error=_error(exception)),
        )


def _queue(task: Any, info: dict[str, Any]) -> str | None:
    """The queue a task was routed to, resolved from the topology (delivery info lacks it).

    Cached per app and task name: the topology does not change while the app lives, and this
    runs for every event of every task.
    """
    cache: dict[str, str | None] = task.app.__dict__.setdefault("_growbin_queue_of", {})
    if task.name not in cache:
        from growbin.runtime.task_base import topology_of
        from growbin.topology.resolve import resolve_route

        try:
            route = resolve_route(topology_of(task.app), task.name)
        except RuntimeError:
            route = None
        cache[task.name] = route.queue if route else None
    return cache[task.name]


def _error(exc: Any) -> str | None:
    if exc is None:
        return None
    inner = getattr(exc, "exc", None) or exc  # Retry wraps the real exception
    return f"{type(inner).__name__}: {inner}"


def install_hooks(app: Celery, hooks: list[TaskHooks]) -> SignalAdapter:
    adapter = SignalAdapter(app, hooks)
    adapter.connect()
    app.growbin_hooks = adapter
    return adapter
