"""Read a message from the dead-letter queue as a :class:`DeadLetter`.

Three kinds arrive there. A worker's dead letter carries ``x-growbin-death`` (a DeathInfo table)
and says everything. A broker's dead letter carries RabbitMQ's ``x-death``: a list of tables, the
most recent death first, each with ``count``, ``reason``, ``queue``, ``time``, ``exchange`` and
``routing-keys``, plus ``x-first-death-reason``/``-queue``/``-exchange``; the task name and id come
from Celery's protocol-2 headers. A message in the unroutable queue has neither.

A broker's dead letter has no id of its own, so its id is a hash of what does not change while it
waits (task id, first death queue, reason, death time and count, body): syncing twice finds the
same id and never duplicates the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from growbin.ops.deadletters.headers import utc
from growbin.ops.deadletters.message import (
    NOT_A_TASK,
    UNKNOWN_REASON,
    UNROUTABLE_REASON,
    DeadLetter,
    Origin,
    RawMessage,
)
from growbin.runtime.deadletter import DEATH_HEADER, DeathInfo, reason_from_x_death

ID_LENGTH = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse(raw: RawMessage, *, dead_letter_queue: str, unroutable: bool = False) -> DeadLetter:
    """The dead letter in ``raw``, read from ``dead_letter_queue``.

    ``unroutable`` says the queue is the alternate exchange's (role unroutable): a message there
    with no death header was never routed, rather than dead-lettered by hand.
    """
    death = raw.headers.get(DEATH_HEADER)
    if isinstance(death, Mapping):
        return _growbin_made(raw, death, dead_letter_queue)
    x_death = raw.headers.get("x-death")
    if isinstance(x_death, list | tuple) and x_death and isinstance(x_death[0], Mapping):
        return _broker_made(raw, list(x_death), dead_letter_queue)
    return _undead(raw, dead_letter_queue, unroutable)


def _growbin_made(raw: RawMessage, value: Mapping[str, Any], dlq: str) -> DeadLetter:
    info = death_info(value)
    dead_lettered_at = parse_time(info.dead_lettered_at) or _EPOCH
    return DeadLetter(
        dead_letter_id=info.dead_letter_id,
        origin=Origin.GROWBIN,
        dead_letter_queue=dlq,
        task_id=info.task_id,
        task_name=info.task or NOT_A_TASK,
        reason=info.reason,
        exchange=info.exchange,
        routing_key=info.routing_key,
        queue=info.queue,
        attempts=info.attempts,
        dead_lettered_at=dead_lettered_at,
        message=raw,
        first_failure=parse_time(info.first_failure),
        last_failure=parse_time(info.last_failure),
        exception_type=info.exception_type,
        exception_message=info.exception_message,
        traceback=info.traceback,
        retryable=info.retryable,
        worker=info.worker,
    )


def death_info(value: Mapping[str, Any]) -> DeathInfo:
    """DeathInfo from the header, tolerating a worker of another version.

    A field the writer did not know gets an empty value instead of making the dead letter
    unreadable; text that arrived as bytes is decoded.
    """
    known: dict[str, Any] = {}
    for f in fields(DeathInfo):
        if f.name in value:
            known[f.name] = _text(value[f.name]) if f.type == "str" else value[f.name]
        elif f.name in {"dead_letter_id", "dead_lettered_at"}:
            continue  # DeathInfo's own defaults: a fresh id and now
        else:
            known[f.name] = {"int": 0, "bool": False}.get(str(f.type), "")
    known["attempts"] = _int(known.get("attempts"), 0)
    known["retryable"] = bool(known.get("retryable"))
    return DeathInfo.from_header(known)


def _broker_made(raw: RawMessage, x_death: list[Any], dlq: str) -> DeadLetter:
    headers = raw.headers
    latest: Mapping[str, Any] = x_death[0]
    first_queue = _text(headers.get("x-first-death-queue")) or _text(latest.get("queue"))
    first_exchange = _text(headers.get("x-first-death-exchange"))
    # the original route is the first death's: the entry for that queue, else the oldest entry
    first = next(
        (e for e in x_death if isinstance(e, Mapping) and _text(e.get("queue")) == first_queue),
        x_death[-1] if isinstance(x_death[-1], Mapping) else latest,
    )
    routing_keys = first.get("routing-keys") or []
    routing_key = _text(routing_keys[0]) if routing_keys else ""
    exchange = (
        first_exchange if "x-first-death-exchange" in headers else _text(first.get("exchange"))
    )
    reason = reason_from_x_death(_text(latest.get("reason"))).value
    died_at = latest.get("time")
    dead_lettered_at = utc(died_at) if isinstance(died_at, datetime) else _EPOCH
    count = _int(latest.get("count"), 1)
    task_name, task_id, attempts = _task(raw)
    dead_letter_id = stable_id(
        task_id, first_queue, reason, dead_lettered_at.isoformat(), str(count), body=raw.body
    )
    return DeadLetter(
        dead_letter_id=dead_letter_id,
        origin=Origin.BROKER,
        dead_letter_queue=dlq,
        task_id=task_id,
        task_name=task_name,
        reason=reason,
        exchange=exchange,
        routing_key=routing_key,
        queue=_text(latest.get("queue")),
        attempts=attempts,
        dead_lettered_at=dead_lettered_at,
        message=raw,
    )


def _undead(raw: RawMessage, dlq: str, unroutable: bool) -> DeadLetter:
    task_name, task_id, attempts = _task(raw)
    stamp = raw.properties.get("timestamp")
    published_at = utc(stamp) if isinstance(stamp, datetime) else None
    dead_letter_id = stable_id(
        task_id,
        dlq,
        raw.exchange,
        raw.routing_key,
        published_at.isoformat() if published_at else "",
        body=raw.body,
    )
    return DeadLetter(
        dead_letter_id=dead_letter_id,
        origin=Origin.UNROUTABLE if unroutable else Origin.UNKNOWN,
        dead_letter_queue=dlq,
        task_id=task_id,
        task_name=task_name,
        reason=UNROUTABLE_REASON if unroutable else UNKNOWN_REASON,
        # the route it was published with: for an unroutable message, the one that matched nothing
        exchange=raw.exchange,
        routing_key=raw.routing_key,
        queue="",
        attempts=attempts,
        # the publish time when the publisher set it; otherwise the archive's first sight of it
        dead_lettered_at=published_at or datetime.now(UTC),
        message=raw,
    )


def _task(raw: RawMessage) -> tuple[str, str, int]:
    """(task name, task id, attempts) from Celery protocol-2 headers."""
    headers = raw.headers
    name = _text(headers.get("task"))
    if not name:
        # not a Celery task: name it so, and use whatever id the publisher gave
        ident = raw.properties.get("message_id") or raw.properties.get("correlation_id")
        return NOT_A_TASK, _text(ident), 1
    return name, _text(headers.get("id")), _int(headers.get("retries"), 0) + 1


def stable_id(*parts: str, body: bytes) -> str:
    """A dead-letter id that is the same every time the same message is read."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")  # so ("ab", "c") and ("a", "bc") differ
    digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()[:ID_LENGTH]


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 text (or a datetime) as aware UTC; empty or unreadable -> None."""
    if isinstance(value, datetime):
        return utc(value)
    text = _text(value)
    if not text:
        return None
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _int(value: object, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return default
