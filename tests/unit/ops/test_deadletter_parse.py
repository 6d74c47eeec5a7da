"""Reading dead letters: growbin-made, broker-made (x-death), not-a-task and unroutable."""

from datetime import UTC, datetime

from growbin.ops.deadletters.message import NOT_A_TASK, Origin, RawMessage
from growbin.ops.deadletters.parse import death_info, parse, parse_time, stable_id
from growbin.runtime.deadletter import DEATH_HEADER, DeathInfo

TASK_ID = "5f0c8a52-2c59-4a4e-8a53-0a4ee2c5f9a1"
BODY = b'[[1], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'


def celery_headers(task="growbin.jobs.analytics_daily", retries=0, **extra):
    return {"lang": "py", "task": task, "id": TASK_ID, "retries": retries, "eta": None, **extra}


def properties(**extra):
    return {"content_type": "application/json", "content_encoding": "utf-8", **extra}


def x_death_headers(*, count=1, reason="expired", time=datetime(2025, 3, 1, 12, 0, 5)):
    """What RabbitMQ adds when q.batch dead-letters a message (time is decoded naive UTC)."""
    return {
        "x-death": [
            {
                "count": count,
                "reason": reason,
                "queue": "q.batch",
                "time": time,
                "exchange": "tasks",
                "routing-keys": ["batch.analytics"],
            }
        ],
        "x-first-death-reason": reason,
        "x-first-death-queue": "q.batch",
        "x-first-death-exchange": "tasks",
    }


def broker_made(**death):
    headers = {**celery_headers(retries=2), **x_death_headers(**death)}
    return RawMessage(
        body=BODY, properties=properties(), headers=headers, exchange="dlx", routing_key="dlq"
    )


def worker_info(**changes):
    values = {
        "reason": "failed",
        "task": "growbin.scan.classify",
        "task_id": TASK_ID,
        "exchange": "tasks",
        "routing_key": "ai.analyze",
        "queue": "q.ai",
        "attempts": 4,
        "first_failure": "2025-03-01T12:00:00.000+00:00",
        "last_failure": "2025-03-01T12:00:07.500+00:00",
        "exception_type": "growbin.scan.providers.VisionTimeout",
        "exception_message": "vision API did not answer in 30 s",
        "traceback": "Traceback (most recent call last):\n...",
        "retryable": True,
        "worker": "ai@host-1",
        **changes,
    }
    return DeathInfo(**values)


def test_a_worker_dead_letter_is_read_from_the_growbin_death_header():
    info = worker_info()
    raw = RawMessage(
        body=BODY,
        properties=properties(),
        headers={
            **celery_headers("growbin.scan.classify", retries=3),
            DEATH_HEADER: info.as_header(),
        },
    )

    letter = parse(raw, dead_letter_queue="q.dlq")

    assert letter.origin is Origin.GROWBIN
    assert letter.dead_letter_id == info.dead_letter_id
    assert (letter.task_name, letter.task_id) == ("growbin.scan.classify", TASK_ID)
    assert (letter.reason, letter.queue, letter.attempts) == ("failed", "q.ai", 4)
    assert (letter.exchange, letter.routing_key) == ("tasks", "ai.analyze")
    assert letter.exception_type == "growbin.scan.providers.VisionTimeout"
    assert letter.retryable is True
    assert letter.first_failure == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert letter.last_failure == datetime(2025, 3, 1, 12, 0, 7, 500000, tzinfo=UTC)
    assert letter.dead_letter_queue == "q.dlq"


def test_a_death_header_from_an_older_worker_with_missing_fields_still_reads():
    header = worker_info().as_header()
    del header["worker"], header["retryable"]
    header["task"] = b"growbin.scan.classify"

    info = death_info(header)

    assert (info.worker, info.retryable, info.task) == ("", False, "growbin.scan.classify")
    assert info.dead_letter_id == header["dead_letter_id"]


def test_a_broker_dead_letter_is_read_from_x_death_and_celery_headers():
    letter = parse(broker_made(), dead_letter_queue="q.dlq")

    assert letter.origin is Origin.BROKER
    assert (letter.task_name, letter.task_id) == ("growbin.jobs.analytics_daily", TASK_ID)
    assert letter.reason == "expired"
    assert (letter.exchange, letter.routing_key, letter.queue) == (
        "tasks",
        "batch.analytics",
        "q.batch",
    )
    assert letter.attempts == 3  # retries + 1
    assert letter.dead_lettered_at == datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
    assert (letter.exception_type, letter.exception_message, letter.traceback) == ("", "", "")
    assert letter.retryable is None
    assert len(letter.dead_letter_id) == 32


def test_rabbitmq_reasons_are_named_as_growbin_reasons():
    reasons = {
        raw_reason: parse(broker_made(reason=raw_reason), dead_letter_queue="q.dlq").reason
        for raw_reason in ("expired", "maxlen", "rejected", "delivery_limit")
    }

    assert reasons == {
        "expired": "expired",
        "maxlen": "overflowed",
        "rejected": "rejected",
        "delivery_limit": "delivery-limit",
    }


def test_a_broker_dead_letter_has_the_same_id_every_time_it_is_read():
    first = parse(broker_made(), dead_letter_queue="q.dlq")
    again = parse(broker_made(), dead_letter_queue="q.dlq")

    assert first.dead_letter_id == again.dead_letter_id


def test_a_second_death_of_the_same_task_gets_a_new_id():
    once = parse(broker_made(count=1), dead_letter_queue="q.dlq")
    twice = parse(broker_made(count=2), dead_letter_queue="q.dlq")
    later = parse(broker_made(time=datetime(2025, 3, 2)), dead_letter_queue="q.dlq")

    assert len({once.dead_letter_id, twice.dead_letter_id, later.dead_letter_id}) == 3


def test_the_original_route_is_the_first_death_when_a_message_died_twice():
    raw = broker_made()
    x_death = [
        {
            "count": 1,
            "reason": "rejected",
            "queue": "q.retry",
            "time": datetime(2025, 3, 1, 13),
            "exchange": "retry",
            "routing-keys": ["retry.analytics"],
        },
        *raw.headers["x-death"],
    ]
    headers = {**raw.headers, "x-death": x_death}

    letter = parse(RawMessage(body=BODY, headers=headers), dead_letter_queue="q.dlq")

    assert (letter.exchange, letter.routing_key) == ("tasks", "batch.analytics")
    assert (letter.queue, letter.reason) == ("q.retry", "rejected")  # where it died last


def test_a_message_that_is_not_a_celery_task_is_still_a_dead_letter():
    headers = x_death_headers()
    raw = RawMessage(body=b"\xff\xfe", properties={"message_id": "m-1"}, headers=headers)

    letter = parse(raw, dead_letter_queue="q.dlq")

    assert letter.task_name == NOT_A_TASK
    assert letter.task_id == "m-1"
    assert (letter.reason, letter.attempts) == ("expired", 1)


def test_a_message_in_the_unroutable_queue_keeps_the_route_that_matched_nothing():
    raw = RawMessage(
        body=BODY,
        properties=properties(),
        headers=celery_headers("growbin.jobs.typo"),
        exchange="tasks",
        routing_key="batch.typo",
    )

    letter = parse(raw, dead_letter_queue="q.unroutable", unroutable=True)
    again = parse(raw, dead_letter_queue="q.unroutable", unroutable=True)

    assert (letter.origin, letter.reason) == (Origin.UNROUTABLE, "unroutable")
    assert (letter.exchange, letter.routing_key, letter.queue) == ("tasks", "batch.typo", "")
    assert letter.dead_letter_id == again.dead_letter_id


def test_a_message_with_no_death_header_in_the_dead_letter_queue_has_an_unknown_reason():
    letter = parse(RawMessage(body=b"x"), dead_letter_queue="q.dlq")

    assert (letter.origin, letter.reason, letter.task_name) == (
        Origin.UNKNOWN,
        "unknown",
        NOT_A_TASK,
    )


def test_stable_ids_separate_their_parts_and_depend_on_the_body():
    assert stable_id("ab", "c", body=b"") != stable_id("a", "bc", body=b"")
    assert stable_id("a", body=b"1") != stable_id("a", body=b"2")
    assert stable_id("a", body=b"1") == stable_id("a", body=b"1")


def test_times_are_read_as_aware_utc_and_empty_ones_as_none():
    assert parse_time("2025-03-01T12:00:00+09:00") == datetime(2025, 3, 1, 3, tzinfo=UTC)
    assert parse_time(datetime(2025, 3, 1)) == datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_time("") is None
    assert parse_time("yesterday") is None
