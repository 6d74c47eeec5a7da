"""Is this message a task a worker can run? The checks a worker makes before Celery's handler.

A message runs when it has Celery protocol-2 headers (a ``task`` name and an ``id``), an accepted
content type, a body that decodes, a body of the protocol's shape ``[args, kwargs, embed]``, and a
task name the worker knows. :func:`diagnose` names the first of these that fails as a
:class:`growbin.runtime.deadletter.DeathReason` with an exception that says what is wrong and
what to do; :mod:`growbin.runtime.unprocessable` turns that into a dead letter.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from celery.exceptions import InvalidTaskError, NotRegistered
from kombu.exceptions import ContentDisallowed, DecodeError

from growbin.runtime.deadletter import DeathReason

MAX_SHOWN = 200  # characters of a value quoted in an error message


@dataclass(frozen=True)
class Unprocessable:
    """Why a message cannot run: the dead letter's reason and the exception that says so."""

    reason: DeathReason
    error: BaseException


def diagnose(message: Any, known_tasks: Collection[str], accepted: str) -> Unprocessable | None:
    """What stops ``message`` (a kombu message) from running as a task; None if nothing does.

    ``known_tasks`` are the task names this worker has; ``accepted`` describes the content
    types it accepts, for the error text. The checks go from the outside in, so the reason is
    the most basic problem: a message with no task headers is ``malformed`` whatever its body.
    An ``unregistered`` task is otherwise well-formed: it can run once a worker knows it.
    """
    headers = message.headers if isinstance(message.headers, Mapping) else {}
    task = headers.get("task")
    if task is None:
        return _without_task_header(message, accepted)
    if not isinstance(task, str) or not task:
        return malformed(
            f"the 'task' header is {_show(task)}: Celery protocol 2 needs the task's name as text"
        )
    task_id = headers.get("id")
    if not isinstance(task_id, str) or not task_id:
        return malformed(
            f"task {task!r} has {'no' if task_id is None else f'an invalid ({_show(task_id)})'} "
            "'id' header: Celery protocol 2 needs a task id; publish tasks with Celery "
            "(send_task or apply_async), not by hand"
        )
    try:
        body = message.payload
    except ContentDisallowed as exc:
        return disallowed(message, exc, accepted)
    except Exception as exc:  # kombu raises DecodeError; a codec may raise anything
        return undecodable(message, exc)
    shape = _shape_problem(body)
    if shape is not None:
        return malformed(
            f"task {task!r} has a body of the wrong shape ({shape}): Celery protocol 2 needs a "
            "list [args, kwargs, embed] with args a list and kwargs an object"
        )
    if task not in known_tasks:
        return Unprocessable(
            DeathReason.UNREGISTERED,
            NotRegistered(
                f"task {task!r} is not registered in this worker: deploy a worker whose task "
                "modules define it (GROWBIN_TASK_MODULES), then replay the dead letter"
            ),
        )
    return None


def _without_task_header(message: Any, accepted: str) -> Unprocessable | None:
    """A protocol-1 task (its name in the body) goes on to Celery; anything else is no task."""
    try:
        body = message.payload
    except ContentDisallowed:
        detail = f"its content type {content_type_of(message)!r} is not accepted ({accepted})"
    except Exception as exc:
        detail = f"its body does not decode as {content_type_of(message)!r} ({exc})"
    else:
        if isinstance(body, Mapping) and isinstance(body.get("task"), str):
            return None
        detail = f"its body is {_kind(body)}, not a protocol-1 task (an object with 'task')"
    return malformed(
        f"not a Celery task message: it has no 'task' header (Celery protocol 2) and {detail}; "
        "publish tasks with Celery (send_task or apply_async)"
    )


def _shape_problem(body: Any) -> str | None:
    if isinstance(body, Mapping):
        # Celery's hybrid form, protocol-2 headers with a protocol-1 body, needs 'args'
        if "args" not in body:
            return "an object without 'args'"
        if not isinstance(body["args"], list | tuple):
            return f"'args' is {_kind(body['args'])}"
        if not isinstance(body.get("kwargs", {}), Mapping):
            return f"'kwargs' is {_kind(body.get('kwargs'))}"
        return None
    if not isinstance(body, list | tuple):
        return _kind(body)
    if len(body) != 3:
        return f"a list of {len(body)} item{'s' if len(body) != 1 else ''}"
    args, kwargs, embed = body
    if not isinstance(args, list | tuple):
        return f"args is {_kind(args)}"
    if not isinstance(kwargs, Mapping):
        return f"kwargs is {_kind(kwargs)}"
    if embed is not None and not isinstance(embed, Mapping):
        return f"embed is {_kind(embed)}"
    return None


def malformed(text: str) -> Unprocessable:
    return Unprocessable(DeathReason.MALFORMED, InvalidTaskError(text))


def disallowed(message: Any, exc: BaseException, accepted: str) -> Unprocessable:
    error = ContentDisallowed(
        f"{exc}: growbin workers accept only {accepted}; publish tasks with the json serializer"
    )
    error.__cause__ = exc
    return Unprocessable(DeathReason.CONTENT_DISALLOWED, error)


def undecodable(message: Any, exc: BaseException) -> Unprocessable:
    error = DecodeError(
        f"the body does not decode as {content_type_of(message)!r}: {exc}; the publisher sent "
        "bytes that are not what its content type says"
    )
    error.__cause__ = exc
    return Unprocessable(DeathReason.UNDECODABLE, error)


def classify(exc: BaseException) -> DeathReason:
    """The reason for an exception Celery's consumer raised about a message."""
    if isinstance(exc, ContentDisallowed):
        return DeathReason.CONTENT_DISALLOWED
    if isinstance(exc, NotRegistered | KeyError):
        return DeathReason.UNREGISTERED
    if isinstance(exc, InvalidTaskError):
        return DeathReason.MALFORMED
    return DeathReason.UNDECODABLE


def content_type_of(message: Any) -> str:
    return str(message.content_type or "(none)")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, bytes | bytearray):
        return f"{len(value)} bytes of raw data"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."
