"""Headers and properties: what a replay keeps, and how a message is archived as JSON and text.

A replay is the original task with a fresh retry budget. Everything that records a past death
or a past schedule goes: RabbitMQ's ``x-death`` and ``x-first-death-*``/``x-last-death-*`` (left
in place, a second death would be folded into the old entry and the replay would look as if it
had died before it ran), our ``x-growbin-death`` and ``x-growbin-first-failure``, the quorum
queue's ``x-delivery-count``, Celery's ``eta`` (a countdown from days ago) and ``expires`` (long
past, so the worker would revoke the task on arrival). Celery's ``retries`` restarts at 0. Other
headers, ``x-growbin-*`` ones included (an idempotency key must survive), are kept. The task id
stays, so a caller's AsyncResult sees the replay's result.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from growbin.runtime.deadletter import DEATH_HEADER
from growbin.runtime.task_base import FIRST_FAILURE_HEADER

DEATH_HEADERS = frozenset({"x-death", DEATH_HEADER, FIRST_FAILURE_HEADER, "x-delivery-count"})
DEATH_HEADER_PREFIXES = ("x-first-death-", "x-last-death-")
SCHEDULE_HEADERS = frozenset({"eta", "expires"})

# AMQP properties a replay carries over. Left out on purpose: expiration (a per-message TTL
# that already ran out once), user_id (RabbitMQ refuses a user_id other than the publisher's),
# timestamp (the replay is a new publish) and application_headers (rebuilt separately).
REPLAYED_PROPERTIES = (
    "content_type",
    "content_encoding",
    "correlation_id",
    "reply_to",
    "priority",
    "message_id",
    "type",
    "app_id",
)
PERSISTENT = 2


def replay_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The original headers with the death and schedule records removed and retries reset."""
    kept = {
        key: value
        for key, value in headers.items()
        if key not in DEATH_HEADERS
        and key not in SCHEDULE_HEADERS
        and not key.startswith(DEATH_HEADER_PREFIXES)
    }
    if "task" in headers:
        kept["retries"] = 0
    return kept


def replay_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    kept = {key: properties[key] for key in REPLAYED_PROPERTIES if properties.get(key) is not None}
    kept["delivery_mode"] = PERSISTENT
    return kept


def replay_route(to: str | None, exchange: str, routing_key: str) -> tuple[str, str]:
    """Where a replay goes: the original route, or ``to`` ("exchange:key", or a key alone)."""
    if to is None or to == "":
        return exchange, routing_key
    if ":" in to:
        new_exchange, _, new_key = to.partition(":")
        return new_exchange, new_key
    return exchange, to


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; the amqp library decodes AMQP timestamps as naive UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_safe(value: Any) -> Any:
    """An AMQP table value as JSON: timestamps become ISO text, undecodable bytes base64.

    PostgreSQL stores no NUL character in text or JSONB, so text holding one is base64 too.
    """
    if isinstance(value, Mapping):
        return {pg_text(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}
        return json_safe(text)
    if isinstance(value, str) and "\x00" in value:
        return {"base64": base64.b64encode(value.encode("utf-8")).decode("ascii")}
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def pg_text(text: str) -> str:
    """Text PostgreSQL can store: a NUL character (it stores none) becomes U+FFFD."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def body_text(body: bytes) -> tuple[str, bool]:
    """(text, is_base64): the body as UTF-8 text, or as base64 when it is not UTF-8 text
    PostgreSQL can store (a NUL byte), so that the archive keeps any body byte for byte."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if "\x00" not in text:
            return text, False
    return base64.b64encode(body).decode("ascii"), True


def body_bytes(text: str, is_base64: bool) -> bytes:
    return base64.b64decode(text) if is_base64 else text.encode("utf-8")
