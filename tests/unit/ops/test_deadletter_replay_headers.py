"""What a replay keeps of the original message, and how a message is archived."""

from datetime import UTC, datetime, timedelta, timezone

from growbin.ops.deadletters.headers import (
    body_bytes,
    body_text,
    json_safe,
    replay_headers,
    replay_properties,
    replay_route,
)
from growbin.runtime.deadletter import DEATH_HEADER


def test_a_replay_drops_every_death_record_and_schedule_and_resets_retries():
    headers = {
        "task": "growbin.jobs.report_generate",
        "id": "t-1",
        "retries": 3,
        "eta": "2025-03-01T12:00:00+00:00",
        "expires": "2025-03-01T13:00:00+00:00",
        "timelimit": [None, None],
        "x-death": [{"count": 1}],
        "x-first-death-reason": "expired",
        "x-first-death-queue": "q.batch",
        "x-first-death-exchange": "tasks",
        "x-last-death-reason": "expired",
        "x-delivery-count": 4,
        DEATH_HEADER: {"reason": "failed"},
        "x-growbin-first-failure": "2025-03-01T11:59:00.000+00:00",
        "x-growbin-idempotency-key": "scan-42",
    }

    cleaned = replay_headers(headers)

    assert cleaned == {
        "task": "growbin.jobs.report_generate",
        "id": "t-1",
        "retries": 0,
        "timelimit": [None, None],
        "x-growbin-idempotency-key": "scan-42",
    }
    assert headers["retries"] == 3, "the original headers are not modified"


def test_a_message_that_is_not_a_task_gets_no_retries_header():
    assert replay_headers({"source": "by hand", "x-death": []}) == {"source": "by hand"}


def test_a_replay_keeps_the_routing_properties_but_not_the_ttl_or_user():
    kept = replay_properties(
        {
            "content_type": "application/json",
            "content_encoding": "utf-8",
            "correlation_id": "t-1",
            "reply_to": "caller-queue",
            "priority": 5,
            "expiration": "1",
            "user_id": "someone-else",
            "timestamp": datetime(2025, 3, 1),
            "delivery_mode": 1,
            "message_id": None,
        }
    )

    assert kept == {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "correlation_id": "t-1",
        "reply_to": "caller-queue",
        "priority": 5,
        "delivery_mode": 2,
    }


def test_a_replay_goes_to_the_original_route_unless_told_otherwise():
    assert replay_route(None, "tasks", "batch.report") == ("tasks", "batch.report")
    assert replay_route("", "tasks", "batch.report") == ("tasks", "batch.report")
    assert replay_route("batch.cleanup", "tasks", "batch.report") == ("tasks", "batch.cleanup")
    assert replay_route("other:x.y", "tasks", "batch.report") == ("other", "x.y")
    assert replay_route(":q.batch", "tasks", "batch.report") == ("", "q.batch")


def test_amqp_header_values_are_archived_as_json():
    naive_utc = datetime(2025, 3, 1, 12, 0, 5)
    seoul = datetime(2025, 3, 1, 21, 0, 5, tzinfo=timezone(timedelta(hours=9)))

    archived = json_safe(
        {
            "x-death": [{"time": naive_utc, "routing-keys": ("batch.x",), "count": 1}],
            "local": seoul,
            "text": b"caf\xc3\xa9",
            "binary": b"\xff\x00",
            "none": None,
            "flag": True,
        }
    )

    assert archived == {
        "x-death": [{"time": "2025-03-01T12:00:05+00:00", "routing-keys": ["batch.x"], "count": 1}],
        "local": datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC).isoformat(),
        "text": "café",
        "binary": {"base64": "/wA="},
        "none": None,
        "flag": True,
    }


def test_a_body_that_is_not_utf8_is_archived_as_base64_and_restored_exactly():
    for body in (b"[[1], {}, {}]", "분리수거".encode(), b"\x00\xff\x10"):
        text, is_base64 = body_text(body)
        assert body_bytes(text, is_base64) == body
    assert body_text(b"\xff") == ("/w==", True)
    assert body_text(b"{}") == ("{}", False)
