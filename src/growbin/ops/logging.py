"""Structured logs: every line written while a task runs names the task, its queue and its scan.

A scan runs as five tasks on different queues and workers; following one means finding the
lines of all five. :class:`TaskContextFilter` reads Celery's current task (so it works for
Celery's own lines, such as "Task ... succeeded", as well as ours) and adds ``task_id``,
``task_name``, ``queue``, ``worker`` and ``scan_id`` to the record; :class:`JsonFormatter` writes
one JSON object per line, ready for Loki or Elasticsearch.

The scan id is the first argument of a scan step (``growbin.scan.*`` tasks take the scan id,
then the dict the previous step returned), or the ``scan_id`` of any task's first dict argument
or keyword. Other tasks' first string argument is left alone: it is a key, not a scan.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

SCAN_TASK_PREFIX = "growbin.scan."
CONTEXT_FIELDS = ("task_id", "task_name", "queue", "worker", "scan_id")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_HANDLER_NAME = "growbin"


def scan_id_of(task_name: str, args: Any, kwargs: Any) -> str | None:
    if isinstance(kwargs, dict) and isinstance(kwargs.get("scan_id"), str):
        return str(kwargs["scan_id"])
    first = args[0] if isinstance(args, list | tuple) and args else None
    if isinstance(first, dict) and isinstance(first.get("scan_id"), str):
        return str(first["scan_id"])
    if isinstance(first, str) and task_name.startswith(SCAN_TASK_PREFIX):
        return first
    return None


class TaskContextFilter(logging.Filter):
    """Adds the current Celery task's identity to every record (None outside a task)."""

    def __init__(self) -> None:
        super().__init__()
        self._queues: dict[tuple[int, str], str | None] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        context = self.context()
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, context.get(name))
        return True

    def context(self) -> dict[str, Any]:
        from celery import current_task

        task = current_task
        request = getattr(task, "request", None) if task else None
        task_id = getattr(request, "id", None)
        if request is None or not task_id:
            return {}
        name = str(task.name)
        return {
            "task_id": task_id,
            "task_name": name,
            "queue": self._queue(task),
            "worker": getattr(request, "hostname", None),
            "scan_id": scan_id_of(name, request.args, request.kwargs),
        }

    def _queue(self, task: Any) -> str | None:
        key = (id(task.app), str(task.name))
        if key not in self._queues:
            self._queues[key] = _route_queue(task)
        return self._queues[key]


def _route_queue(task: Any) -> str | None:
    from growbin.runtime.task_base import topology_of
    from growbin.topology.resolve import resolve_route

    try:
        route = resolve_route(topology_of(task.app), task.name)
    except RuntimeError:
        # not a Growbin app: fall back to what the broker said
        info = getattr(task.request, "delivery_info", None) or {}
        return info.get("routing_key")
    return route.queue if route else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, task context, extras, error."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in entry and name not in CONTEXT_FIELDS:
                entry[name] = value if _jsonable(value) else repr(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The usual text line, with ``[task_name task_id scan=...]`` when a task is running."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        task_id = getattr(record, "task_id", None)
        if not task_id:
            return line
        scan = getattr(record, "scan_id", None)
        where = f"{getattr(record, 'task_name', '')}[{task_id}]" + (f" scan={scan}" if scan else "")
        head, _, rest = line.partition(f" {record.name} ")
        return f"{head} {record.name} {where} {rest}"


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)


def setup_logging(json: bool = False, level: int | str = "INFO") -> logging.Handler:
    """Send the root logger to stderr as JSON lines (``json``) or text, with task context.

    Calling it again replaces the handler it installed, never duplicates it.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    handler.addFilter(TaskContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


def install_celery_logging(json: bool = False) -> None:
    """Make Celery workers log through :func:`setup_logging` (with ``--loglevel``'s level).

    Celery configures logging itself unless a ``setup_logging`` receiver exists; then it only
    calls the receiver. The prefork pool's processes inherit the handler when they fork.
    """
    from celery import signals

    def _receiver(loglevel: int | str | None = None, **_: Any) -> None:
        setup_logging(json=json, level=loglevel or "INFO")

    signals.setup_logging.connect(_receiver, weak=False)
