"""How the task base defers: republish with a countdown and the same retries, then ack.

The full path (a real broker and worker) is in tests/integration/guard/test_deferral.py; here
the decisions, with the publish captured.
"""

from __future__ import annotations

import time

import pytest
from celery.exceptions import Ignore, Reject

from growbin.guard.errors import Throttled
from growbin.runtime.celery_app import create_app
from growbin.runtime.task_base import DEFERRALS_HEADER, DEFERRED_SINCE_HEADER, MAX_DEFER
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.declare import DELAY_EXCHANGE

TOPOLOGY = "tests/fixtures/topologies/execution.yaml"


class Captured:
    def __init__(self, fail: bool = False) -> None:
        self.options: dict = {}
        self.published = False
        self.fail = fail

    def signature_from_request(self, request, args, kwargs, **options):
        self.options = options
        return self

    def apply_async(self):
        if self.fail:
            raise ConnectionError("broker went away")
        self.published = True


@pytest.fixture
def task():
    settings = load_settings(broker_url="memory://", topology=TOPOLOGY)
    app = create_app(settings, loader.load(TOPOLOGY))

    @app.task(name="growbin.testing.guarded_text", bind=True, shared=False)
    def guarded(self):
        return None

    yield guarded
    app.close()


def throttled(retry_after: float) -> Throttled:
    return Throttled("openai.gpt-5", "100 per 60s", retry_after=retry_after)


def test_a_deferral_republishes_with_whole_seconds_and_the_same_retries(task, monkeypatch):
    captured = Captured()
    monkeypatch.setattr(task, "signature_from_request", captured.signature_from_request)
    task.push_request(id="t1", retries=2, headers={}, called_directly=False)
    with pytest.raises(Ignore):
        task._defer(throttled(0.3), (), {})
    assert captured.published
    assert captured.options["countdown"] == 1  # delayed delivery counts whole seconds
    assert captured.options["retries"] == 2  # the budget is untouched
    headers = captured.options["headers"]
    assert headers[DEFERRALS_HEADER] == "1"
    assert abs(float(headers[DEFERRED_SINCE_HEADER]) - time.time()) < 5


def test_a_deferral_goes_through_rabbitmqs_delayed_delivery_not_the_workers_memory(
    task, monkeypatch
):
    captured = Captured()
    monkeypatch.setattr(task, "signature_from_request", captured.signature_from_request)
    task.push_request(id="t1", retries=0, headers={}, called_directly=False)
    with pytest.raises(Ignore):
        task._defer(throttled(5), (), {})
    assert captured.options["queue"] == "q.work"
    # Celery takes the delayed-delivery path for a queue whose exchange is not direct: the
    # app's queue names the delay exchange (tests/unit/runtime/test_task_base.py follows the
    # whole publish)
    queue = task.app.amqp.queues["q.work"]
    assert (queue.exchange.name, queue.exchange.type) == (DELAY_EXCHANGE, "topic")


def test_a_deferred_copy_drops_rabbitmqs_death_records(task, monkeypatch):
    captured = Captured()
    monkeypatch.setattr(task, "signature_from_request", captured.signature_from_request)
    headers = {"x-death": [{"queue": "celery_delayed_0"}], "x-first-death-queue": "q", "k": "v"}
    task.push_request(id="t1", retries=0, headers=headers, called_directly=False)
    with pytest.raises(Ignore):
        task._defer(throttled(1), (), {})
    kept = captured.options["headers"]
    assert "x-death" not in kept and "x-first-death-queue" not in kept
    assert kept["k"] == "v"


def test_later_deferrals_keep_the_first_deferral_time_and_count_up(task, monkeypatch):
    captured = Captured()
    monkeypatch.setattr(task, "signature_from_request", captured.signature_from_request)
    headers = {DEFERRED_SINCE_HEADER: "1000.0", DEFERRALS_HEADER: "4"}
    task.push_request(id="t1", retries=0, headers=headers, called_directly=False)
    with pytest.raises(Ignore):
        task._defer(throttled(2.5), (), {})
    assert captured.options["countdown"] == 3
    assert captured.options["headers"][DEFERRED_SINCE_HEADER] == "1000.0"
    assert captured.options["headers"][DEFERRALS_HEADER] == "5"


def test_a_deferral_the_broker_refuses_is_rejected_not_acked(task, monkeypatch):
    captured = Captured(fail=True)
    monkeypatch.setattr(task, "signature_from_request", captured.signature_from_request)
    task.push_request(id="t1", retries=0, headers={}, called_directly=False)
    with pytest.raises(Reject) as info:
        task._defer(throttled(1), (), {})
    assert info.value.requeue is False  # RabbitMQ dead-letters it, saying why


def test_a_task_deferred_past_the_limit_is_handled_as_a_failure(task):
    since = f"{time.time() - MAX_DEFER - 10:.3f}"
    task.push_request(id="t1", headers={DEFERRED_SINCE_HEADER: since}, called_directly=False)
    assert not task._may_defer(throttled(1))
    task.pop_request()
    task.push_request(id="t2", headers={}, called_directly=False)
    assert task._may_defer(throttled(1))


def test_a_direct_call_is_never_deferred(task):
    task.push_request(id="t1", headers={}, called_directly=True)
    assert not task._may_defer(throttled(1))
