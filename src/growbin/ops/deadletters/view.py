"""Dead-letter records as plain data for the command line (JSON) and tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from growbin.db.models import DeadLetterRecord

SUMMARY_FIELDS = (
    "dead_letter_id",
    "state",
    "reason",
    "task_name",
    "task_id",
    "queue",
    "exchange",
    "routing_key",
    "attempts",
    "exception_type",
    "exception_message",
    "origin",
    "dead_letter_queue",
    "vhost",
    "replay_count",
)
TIME_FIELDS = ("dead_lettered_at", "first_failure", "last_failure", "last_replayed_at")
DETAIL_FIELDS = (
    "retryable",
    "worker",
    "traceback",
    "content_type",
    "content_encoding",
    "last_replayed_to",
    "superseded_by",
    "headers",
    "properties",
    "body",
    "body_base64",
)
DETAIL_TIMES = ("recorded_at", "updated_at", "last_seen_at", "superseded_at")


def summary(record: DeadLetterRecord) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(record, name) for name in SUMMARY_FIELDS}
    data.update({name: _iso(getattr(record, name)) for name in TIME_FIELDS})
    return data


def detail(record: DeadLetterRecord) -> dict[str, Any]:
    data = summary(record)
    data.update({name: getattr(record, name) for name in DETAIL_FIELDS})
    data.update({name: _iso(getattr(record, name)) for name in DETAIL_TIMES})
    return data


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """'45s', '12m', '3h', '2d' ago."""
    if moment is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def exception_line(record: DeadLetterRecord, width: int = 60) -> str:
    if not record.exception_type:
        return ""
    short = record.exception_type.rsplit(".", 1)[-1]
    text = f"{short}: {record.exception_message}" if record.exception_message else short
    return text if len(text) <= width else text[: width - 3] + "..."


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
