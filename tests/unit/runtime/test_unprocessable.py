"""The dead letter a worker makes of a message that cannot run, and when it acks."""

from __future__ import annotations

from typing import Any

import pytest
from celery.exceptions import InvalidTaskError
from kombu.exceptions import ContentDisallowed, DecodeError
from kombu.message import Message
from kombu.utils.imports import symbol_by_name
from tests.unit.runtime.kombu_messages import GOOD_BODY, TASK_ID, celery_headers, message

from growbin.runtime.celery_app import celery_config
from growbin.runtime.task_message import diagnose
from growbin.runtime.unprocessable import (
    UnprocessableConsumer,
    dead_letter_target,
    death_info,
    raw_body,
)
from growbin.settings import load_settings
from growbin.topology import loader

KNOWN = {"growbin.demo.add"}
ACCEPTED = "json"


def test_the_death_header_names_the_route_the_exception_and_the_task():
    msg = message(headers=celery_headers(task="growbin.demo.nope", retries=2))
    msg.delivery_info["routing_key"] = "0." * 28 + "api.demo"  # came through delayed delivery
    problem = diagnose(msg, KNOWN, ACCEPTED)
    assert problem is not None

    info = death_info(msg, problem, "q.api", "api@host")

    assert (info.reason, info.task, info.task_id) == ("unregistered", "growbin.demo.nope", TASK_ID)
    assert (info.exchange, info.routing_key, info.queue) == ("tasks", "api.demo", "q.api")
    assert info.exception_type == "celery.exceptions.NotRegistered"
    # KeyError's str() would wrap the whole text in quotes
    assert info.exception_message.startswith("task 'growbin.demo.nope' is not registered")
    assert (info.attempts, info.retryable, info.worker) == (3, False, "api@host")


def test_a_message_without_a_task_id_is_named_by_its_message_id():
    msg = message(b"hi", headers={}, content_type="text/plain", message_id="m-7")
    problem = diagnose(msg, KNOWN, ACCEPTED)
    assert problem is not None

    info = death_info(msg, problem, "q.api", "api@host")

    assert (info.task, info.task_id, info.attempts) == ("", "m-7", 1)


def test_the_body_is_republished_as_the_bytes_that_arrived():
    assert raw_body(message(b"\x80\x04binary", content_encoding="binary")) == b"\x80\x04binary"
    # the amqp library decodes a body with a content encoding to text
    assert raw_body(message("h\u00e9", content_encoding="utf-8")) == "h\u00e9".encode()
    assert raw_body(message("h\u00e9", content_encoding="latin-1")) == b"h\xe9"


def test_the_target_is_the_queues_dead_letter_exchange_and_key_from_the_topology():
    topology = loader.load("production").topology

    target = dead_letter_target(topology, "q.api", "api.demo")

    assert target is not None
    assert (target.exchange, target.routing_key) == ("dlx", "dlq")
    assert dead_letter_target(topology, "q.dlq", "x") is None  # no dead-letter exchange
    assert dead_letter_target(topology, "q.nope", "x") is None


def test_every_growbin_app_runs_the_consumer_that_dead_letters():
    settings = load_settings(env="test")
    topology = loader.load("production").topology

    configured = celery_config(settings, topology)["worker_consumer"]

    assert symbol_by_name(configured) is UnprocessableConsumer


class Recorded(Message):
    """A message that records what the consumer did with it, in order."""

    def __init__(self, events: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events = events

    def ack_log_error(self, logger: Any, errors: Any, multiple: bool = False) -> None:
        self.events.append("ack")

    def reject_log_error(self, logger: Any, errors: Any, requeue: bool = False) -> None:
        self.events.append(f"reject(requeue={requeue})")


class FakeProducer:
    def __init__(self, events: list[str], error: Exception | None) -> None:
        self.events = events
        self.error = error
        self.published: list[tuple[bytes, dict[str, Any]]] = []

    def __enter__(self) -> FakeProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def publish(self, body: bytes, **options: Any) -> None:
        self.events.append("publish")
        if self.error is not None:
            raise self.error
        self.published.append((body, options))


class FakeBackend:
    def __init__(self) -> None:
        self.failures: list[tuple[str, BaseException]] = []

    def mark_as_failure(self, task_id: str, exc: BaseException, request: Any = None) -> None:
        self.failures.append((task_id, exc))


def consumer(events: list[str], error: Exception | None = None) -> UnprocessableConsumer:
    """The consumer's dead-letter path alone, without a broker connection."""
    from types import SimpleNamespace

    from growbin.runtime.task_base import attach_platform

    app = SimpleNamespace(backend=FakeBackend(), conf=SimpleNamespace(accept_content=["json"]))
    attach_platform(app, load_settings(env="test"), loader.load("production").topology)
    producer = FakeProducer(events, error)
    app.producer_or_acquire = lambda: producer
    c = UnprocessableConsumer.__new__(UnprocessableConsumer)
    c.app = app
    c.hostname = "api@host"
    c.connection_errors = ()
    c.task_consumer = SimpleNamespace(_active_tags={"q.api": "ct-1"}, queues=[])
    return c


def recorded(events: list[str], body: bytes = b'{"not": json,,', **changes: Any) -> Recorded:
    options: dict[str, Any] = {
        "body": body,
        "delivery_tag": 1,
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": {**celery_headers(), "x-custom": "kept"},
        "properties": {"correlation_id": TASK_ID, "expiration": "60000", "priority": 3},
        "delivery_info": {"exchange": "tasks", "routing_key": "api.demo", "consumer_tag": "ct-1"},
        "accept": ["application/json"],
    }
    options.update(changes)
    return Recorded(events, **options)


def test_a_message_is_acked_only_after_its_dead_letter_was_published():
    events: list[str] = []
    c = consumer(events)
    msg = recorded(events)

    problem = diagnose(msg, KNOWN, ACCEPTED)
    assert problem is not None
    c.dead_letter_unprocessable(msg, problem)

    assert events == ["publish", "ack"]
    [(body, options)] = c.app.producer_or_acquire().published
    assert body == b'{"not": json,,'
    assert (options["exchange"], options["routing_key"]) == ("dlx", "dlq")
    assert options["content_type"] == "application/json"
    assert options["headers"]["x-custom"] == "kept" and options["headers"]["task"]
    death = options["headers"]["x-growbin-death"]
    assert (death["reason"], death["queue"]) == ("undecodable", "q.api")
    assert options["correlation_id"] == TASK_ID and options["priority"] == 3
    assert "expiration" not in options  # a per-message TTL would expire the dead letter too
    assert options["delivery_mode"] == 2
    # a caller waiting on the result learns why, as Celery does for an unknown task
    [(task_id, error)] = c.app.backend.failures
    assert task_id == TASK_ID and isinstance(error, DecodeError)


def test_a_failed_publish_rejects_without_requeue_so_rabbitmq_dead_letters_it():
    events: list[str] = []
    c = consumer(events, error=ConnectionError("broker went away"))

    c.on_decode_error(recorded(events), DecodeError("bad json"))

    assert events == ["publish", "reject(requeue=False)"]
    assert c.app.backend.failures == []


def test_a_queue_without_a_dead_letter_exchange_rejects_without_requeue():
    events: list[str] = []
    c = consumer(events)
    c.task_consumer._active_tags = {"q.dlq": "ct-1"}

    c.on_unknown_message(None, recorded(events, b"hello", headers={}))

    assert events == ["reject(requeue=False)"]


@pytest.mark.parametrize(
    ("callback", "args", "reason"),
    [
        ("on_decode_error", (DecodeError("bad"),), "undecodable"),
        ("on_decode_error", (ContentDisallowed("pickle"),), "content_disallowed"),
        ("on_invalid_task", (None, InvalidTaskError("no args")), "malformed"),
        ("on_unknown_task", (None, KeyError("growbin.demo.nope")), "unregistered"),
        ("on_unknown_message", (None,), "malformed"),
    ],
)
def test_celerys_callbacks_dead_letter_instead_of_acking_or_rejecting(callback, args, reason):
    events: list[str] = []
    c = consumer(events)
    msg = recorded(events)

    if callback == "on_decode_error":
        getattr(c, callback)(msg, *args)
    else:
        getattr(c, callback)(args[0], msg, *args[1:])

    assert events == ["publish", "ack"]
    [(_, options)] = c.app.producer_or_acquire().published
    death = options["headers"]["x-growbin-death"]
    assert death["reason"] == reason
    assert death["exception_type"] and death["exception_message"]


def test_the_task_handler_passes_valid_tasks_to_celery_and_dead_letters_the_rest():
    events: list[str] = []
    c = consumer(events)
    ran: list[Any] = []
    c.strategies = {"growbin.demo.add": lambda message, *rest: ran.append(message)}
    c.on_task_message = set()
    c.call_soon_ack = lambda *args: None
    c._maximum_prefetch_restored = True
    handle = c.create_task_handler()
    valid, invalid = recorded(events, GOOD_BODY), recorded(events, b"[1]")

    handle(valid)
    handle(invalid)

    assert ran == [valid]
    assert events == ["publish", "ack"]  # the invalid one only
