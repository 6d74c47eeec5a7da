"""Countdowns of the task base (retries, deferrals) go through RabbitMQ's delayed delivery.

The publish is followed through Celery's own routing up to the message it would send (an amqp
URL makes Celery take RabbitMQ's paths; nothing connects). The real broker and worker are in
tests/integration/runtime/test_delayed_delivery.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery.exceptions import Ignore, Reject, Retry

from growbin.errors import TransientTaskError
from growbin.guard.errors import Throttled
from growbin.runtime.celery_app import create_app
from growbin.runtime.task_base import FIRST_FAILURE_HEADER
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.declare import DELAY_EXCHANGE

TOPOLOGY = "tests/fixtures/topologies/execution.yaml"
DELAY_BITS = 28


def delay_of(routing_key: str) -> tuple[int, str]:
    """The countdown and the key a delayed-delivery routing key carries."""
    words = routing_key.split(".")
    return int("".join(words[:DELAY_BITS]), 2), ".".join(words[DELAY_BITS:])


@pytest.fixture
def app():
    settings = load_settings(broker_url="amqp://guest:guest@127.0.0.1:1/unused", topology=TOPOLOGY)
    celery_app = create_app(settings, loader.load(TOPOLOGY))
    yield celery_app
    celery_app.close()


@pytest.fixture
def sent(app) -> list[dict[str, Any]]:
    captured: list[dict[str, Any]] = []

    def send_task_message(producer, name, message, **options):
        # Celery merges the custom headers into the message's as it publishes
        headers = {**message.headers, **(options.pop("headers", None) or {})}
        captured.append({"headers": headers, **options})

    app.amqp.send_task_message = send_task_message
    return captured


@pytest.fixture
def flaky(app):
    # ignore_result: no result-backend subscription at publish (it would connect to Redis)
    @app.task(name="growbin.testing.flaky", bind=True, shared=False, ignore_result=True)
    def flaky(self):
        raise TransientTaskError("upstream answered 503")

    return flaky


@pytest.fixture
def guarded(app):
    @app.task(name="growbin.testing.guarded_text", bind=True, shared=False, ignore_result=True)
    def guarded(self):
        return None

    return guarded


def delivered(task, **request: Any) -> None:
    defaults = {
        "id": "t1",
        "retries": 0,
        "headers": {},
        "called_directly": False,
        "delivery_info": {"exchange": "tasks", "routing_key": "work.flaky"},
    }
    task.push_request(**{**defaults, **request})


def test_a_retry_is_published_into_rabbitmqs_delay_chain_in_whole_seconds(flaky, sent):
    delivered(flaky, headers={"x-death": [{"queue": "celery_delayed_0"}], "k": "v"})
    with pytest.raises(Retry):
        flaky._handle_failure(TransientTaskError("503"), (), {})
    [options] = sent
    assert options["exchange"].name == "celery_delayed_27"
    assert "queue" not in options  # not handed to a worker to hold until its ETA
    countdown, key = delay_of(options["routing_key"])
    assert key == "q.work"  # back through the delay exchange, straight into the queue
    assert 1 <= countdown <= 8 and isinstance(countdown, int)
    headers = options["headers"]
    assert headers["retries"] == 1 and headers["id"] == "t1"
    assert "x-death" not in headers and headers["k"] == "v"
    assert FIRST_FAILURE_HEADER in headers


def test_a_deferral_is_published_into_rabbitmqs_delay_chain(guarded, sent):
    delivered(guarded, delivery_info={"exchange": "tasks", "routing_key": "work.guarded"})
    with pytest.raises(Ignore):
        guarded._defer(Throttled("openai.gpt-5", "100 per 60s", retry_after=2.2), (), {})
    [options] = sent
    assert options["exchange"].name == "celery_delayed_27"
    assert delay_of(options["routing_key"]) == (3, "q.work")
    assert options["headers"]["retries"] == 0


def test_a_delayed_delivery_reads_as_the_routes_own(flaky):
    bits = ".".join("0" * 27 + "1")
    info = {"exchange": "celery_delayed_delivery", "routing_key": f"{bits}.q.work"}
    delivered(flaky)
    flaky._restore_route(info)
    assert info == {"exchange": "tasks", "routing_key": "work.flaky"}


def test_a_delivery_that_did_not_pass_the_delay_chain_is_left_alone(flaky):
    info = {"exchange": "tasks", "routing_key": "work.flaky"}
    delivered(flaky)
    flaky._restore_route(info)
    assert info == {"exchange": "tasks", "routing_key": "work.flaky"}


def test_an_unrouted_delayed_delivery_goes_back_through_the_delay_exchange(app):
    @app.task(name="other.task", bind=True, shared=False)
    def other(self):
        return None

    bits = ".".join("0" * 27 + "1")
    info = {"exchange": "celery_delayed_delivery", "routing_key": f"{bits}.q.work"}
    delivered(other)
    other._restore_route(info)
    assert info == {"exchange": DELAY_EXCHANGE, "routing_key": "q.work"}


def test_a_refused_retry_of_an_early_acked_task_is_dead_lettered_not_lost(flaky, monkeypatch):
    # acks_late false (a profile's choice): the delivery is already acked, rejecting is void
    monkeypatch.setattr(flaky, "acks_late", False)
    monkeypatch.setattr(flaky, "retry", _refusing_retry)
    letters: list[BaseException] = []
    monkeypatch.setattr(flaky, "dead_letter", lambda exc, **kw: letters.append(exc))
    delivered(flaky)
    flaky._handle_failure(TransientTaskError("503"), (), {})
    assert [type(e) for e in letters] == [TransientTaskError]


def test_a_refused_retry_of_a_late_acked_task_is_rejected_for_rabbitmq_to_dead_letter(
    flaky, monkeypatch
):
    monkeypatch.setattr(flaky, "acks_late", True)
    monkeypatch.setattr(flaky, "retry", _refusing_retry)
    delivered(flaky)
    with pytest.raises(Reject):
        flaky._handle_failure(TransientTaskError("503"), (), {})


def test_a_refused_deferral_of_an_early_acked_task_is_dead_lettered(guarded, monkeypatch, sent):
    monkeypatch.setattr(guarded, "acks_late", False)
    letters: list[BaseException] = []
    monkeypatch.setattr(guarded, "dead_letter", lambda exc, **kw: letters.append(exc))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker went away")

    guarded.app.amqp.send_task_message = refuse
    delivered(guarded)
    with pytest.raises(Ignore):
        guarded._defer(Throttled("openai.gpt-5", "100 per 60s", retry_after=1), (), {})
    assert len(letters) == 1 and "broker went away" in str(letters[0])


def _refusing_retry(**kwargs: Any) -> None:
    raise Reject(ConnectionError("broker went away"), requeue=False)
