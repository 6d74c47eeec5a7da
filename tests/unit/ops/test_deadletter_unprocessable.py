"""Dead letters of messages that are no runnable task: read, archived safely, never replayed."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime

import pytest

from growbin.db.models import DeadLetterRecord
from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.headers import body_bytes, body_text, json_safe, pg_text
from growbin.ops.deadletters.message import NOT_A_TASK, Origin, RawMessage
from growbin.ops.deadletters.parse import parse
from growbin.ops.deadletters.selection import not_runnable
from growbin.ops.deadletters.store import row
from growbin.runtime.deadletter import DEATH_HEADER, DeathInfo, DeathReason


def unprocessable_info(reason: str, task: str = "", task_id: str = "") -> DeathInfo:
    return DeathInfo(
        reason=reason,
        task=task,
        task_id=task_id,
        exchange="tasks",
        routing_key="api.demo",
        queue="q.api",
        attempts=1,
        first_failure="2025-03-01T12:00:00.000+00:00",
        last_failure="2025-03-01T12:00:00.000+00:00",
        exception_type="celery.exceptions.InvalidTaskError",
        exception_message="not a Celery task message: it has no 'task' header",
        traceback="",
        retryable=False,
        worker="api@host",
    )


CASES = [
    # (reason, body, content type, headers besides the death header)
    ("undecodable", b'{"not": json,,', "application/json", {"task": "growbin.demo.add"}),
    ("malformed", b"hello\x00world", "text/plain", {}),
    ("content_disallowed", pickle.dumps(((2, 3), {}, {})), "application/x-python-serialize", {}),
    ("malformed", b"[1]", "application/json", {"task": "growbin.demo.add", "id": "t-1"}),
    ("malformed", b"", "", {"weird\x00key": "a\x00b", "raw": b"\xff"}),
]


@pytest.mark.parametrize(("reason", "body", "content_type", "headers"), CASES)
def test_a_dead_letter_of_any_body_is_parsed_and_archived_byte_for_byte(
    reason, body, content_type, headers
):
    info = unprocessable_info(reason, task=headers.get("task", ""))
    raw = RawMessage(
        body=body,
        properties={"content_type": content_type},
        headers={**headers, DEATH_HEADER: info.as_header()},
        exchange="dlx",
        routing_key="dlq",
    )

    letter = parse(raw, dead_letter_queue="q.dlq")
    archived = row(letter, vhost="/", seen_at=datetime(2025, 3, 1, tzinfo=UTC))

    assert letter.origin is Origin.GROWBIN
    assert (archived["reason"], archived["queue"]) == (reason, "q.api")
    assert archived["exception_type"] == "celery.exceptions.InvalidTaskError"
    assert archived["exception_message"]
    assert archived["task_name"] == (headers.get("task") or NOT_A_TASK)
    assert body_bytes(archived["body"], archived["body_base64"]) == body
    # PostgreSQL refuses NUL in text and in JSONB: none may reach it
    stored_text = json.dumps({k: v for k, v in archived.items() if isinstance(v, str | dict)})
    assert "\\u0000" not in stored_text
    assert all("\x00" not in v for v in archived.values() if isinstance(v, str))


def test_a_body_with_a_nul_byte_is_archived_as_base64():
    assert body_text(b"a\x00b") == ("YQBi", True)
    assert body_text(b"plain") == ("plain", False)


def test_header_text_with_a_nul_is_archived_as_base64_and_keys_lose_it():
    assert json_safe({"k\x00": "v\x00", "b": b"x\x00"}) == {
        "k\ufffd": {"base64": "dgA="},
        "b": {"base64": "eAA="},
    }
    assert pg_text("a\x00b") == "a\ufffdb"


def record(reason: str) -> DeadLetterRecord:
    return DeadLetterRecord(
        dead_letter_id="0123456789abcdef0123456789abcdef",
        reason=reason,
        exception_type="kombu.exceptions.DecodeError",
        exception_message="the body does not decode as 'application/json'",
    )


@pytest.mark.parametrize("reason", ["undecodable", "content_disallowed", "malformed"])
def test_a_replay_refuses_a_message_no_worker_can_run_and_says_why_and_what_to_do(reason):
    why = not_runnable(record(reason))

    assert why is not None
    assert "cannot run" in why and f"reason {reason}" in why
    assert "DecodeError: the body does not decode" in why
    assert "growbin dlq purge 0123456789ab --yes" in why


@pytest.mark.parametrize("reason", ["unregistered", "failed", "expired", "rejected", "unknown"])
def test_a_replay_takes_every_other_dead_letter(reason):
    assert not_runnable(record(reason)) is None


@pytest.mark.parametrize("reason", [r.value for r in DeathReason])
def test_every_reason_can_be_filtered_on(reason):
    assert DeadLetterFilter.from_options(reason=reason).reason == reason
