"""Celery declares exactly the topology, and countdowns wait in RabbitMQ, not in a worker.

Real RabbitMQ (a temporary vhost each), real `growbin worker` processes. Each test prints what
it measured; `pytest -s` shows the report.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Producer

from growbin.runtime.celery_app import create_app
from growbin.runtime.deadletter import DEATH_HEADER
from growbin.runtime.registry import registrars
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.declare import (
    DELAY_EXCHANGE,
    delay_chain_bindings,
    desired_bindings,
    desired_exchanges,
)
from growbin.topology.model import Topology
from growbin.topology.plan import ChangeKind, apply, plan

pytestmark = pytest.mark.integration

TOPOLOGY = "tests/integration/runtime/delayed.yaml"
DELAY_LEVELS = 28  # celery_delayed_0 .. celery_delayed_27


def wait_for(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def live_bindings(broker_api, topology: Topology) -> set[tuple[str, str, str, str]]:
    """The live bindings that touch the topology's exchanges or queues (not the default one)."""
    ours = set(desired_exchanges(topology)) | set(topology.queues)
    return {
        (b.source, b.destination, b.routing_key, b.destination_type)
        for b in broker_api.list_bindings(topology.vhost)
        if b.source and {b.source, b.destination} & ours
    }


def expected_bindings(topology: Topology) -> set[tuple[str, str, str, str]]:
    queues = {(b.exchange, b.queue, b.routing_key, "queue") for b in desired_bindings(topology)}
    chain = {
        (b.exchange, b.queue, b.routing_key, "exchange") for b in delay_chain_bindings(topology)
    }
    return queues | chain


def delay_step_done(broker_api, topology: Topology) -> Callable[[], bool]:
    """True once the worker's delayed-delivery step bound every queue."""
    wanted = expected_bindings(topology)
    return lambda: wanted <= live_bindings(broker_api, topology)


def depth(conn: Connection, queue: str) -> int:
    # a passive declare reads the queue itself; the management API's counters lag
    _, count, _ = conn.default_channel.queue_declare(queue, passive=True)
    return int(count)


def delayed_depth(conn: Connection) -> int:
    return sum(depth(conn, f"celery_delayed_{level}") for level in range(DELAY_LEVELS))


# the production preset: exactly the topology, and the unroutable message stays unroutable


@pytest.fixture
def production(broker_api, temp_vhost) -> Topology:
    topology = loader.load("production").topology.model_copy(update={"vhost": temp_vhost})
    apply(topology, broker_api)
    return topology


def test_a_key_no_binding_takes_lands_in_q_unroutable_after_a_worker_started(
    broker_api, production, service_env, start_worker
):
    worker = start_worker("ai", "production")
    worker.wait_for_log("ready", timeout=90)
    wait_for(delay_step_done(broker_api, production), 30, "the delayed-delivery bindings")
    with Connection(service_env["GROWBIN_BROKER_URL"]) as conn:
        before = depth(conn, "q.unroutable")
        producer = Producer(conn.default_channel)
        producer.publish(
            b'{"from": "outside"}',
            exchange=Exchange("tasks", type="topic"),
            routing_key="external.ai.vision",
            content_type="application/json",
            content_encoding="utf-8",
            declare=[],
        )
        wait_for(lambda: depth(conn, "q.unroutable") == before + 1, 20, "q.unroutable to grow")
    print("\nexternal.ai.vision after the ai worker started: q.unroutable")


def test_a_started_worker_adds_no_exchange_and_no_binding_the_topology_does_not_list(
    broker_api, production, start_worker
):
    worker = start_worker("ai", "production")
    worker.wait_for_log("ready", timeout=90)
    wait_for(delay_step_done(broker_api, production), 30, "the delayed-delivery bindings")

    live = live_bindings(broker_api, production)
    assert live == expected_bindings(production)
    on_work_exchanges = {b for b in live if b[0] in production.exchanges}
    assert on_work_exchanges == {
        (b.exchange, qname, b.routing_key, "queue")
        for qname, q in production.queues.items()
        for b in q.bindings
    }
    exchanges = {x.name for x in broker_api.list_exchanges(production.vhost)}
    assert not exchanges & set(production.queues), "an exchange named after a queue"
    assert DELAY_EXCHANGE in exchanges

    result = plan(production, broker_api)
    changed = [c for c in result if c.kind is not ChangeKind.UNCHANGED]
    print(f"\nplan after the ai worker started: {len(live)} bindings, changes {changed}")
    assert not changed, result.render()


# countdowns and retries, with the test tasks (tests/integration/tasks.py)


@pytest.fixture
def delayed(broker_api, temp_vhost) -> Topology:
    topology = loader.load(TOPOLOGY).topology.model_copy(update={"vhost": temp_vhost})
    apply(topology, broker_api)
    return topology


@pytest.fixture
def env(delayed, service_env) -> dict[str, str]:
    return {
        **service_env,
        "GROWBIN_TOPOLOGY": TOPOLOGY,
        "GROWBIN_TASK_MODULES": "tests.integration.tasks",
    }


@pytest.fixture
def app(env):
    settings = load_settings(
        broker_url=env["GROWBIN_BROKER_URL"],
        redis_url=env["GROWBIN_REDIS_URL"],
        topology=TOPOLOGY,
        task_modules="tests.integration.tasks",
    )
    celery_app = create_app(settings, loader.load(TOPOLOGY), registrars=registrars(settings))
    yield celery_app
    celery_app.close()


@pytest.fixture
def r(env):
    client = redis.Redis.from_url(env["GROWBIN_REDIS_URL"])
    yield client
    client.close()


def test_a_countdown_waits_in_rabbitmq_not_in_the_worker_then_runs(
    broker_api, delayed, env, app, r, start_worker
):
    worker = start_worker("work", TOPOLOGY, env=env)
    worker.wait_for_log("ready", timeout=90)
    wait_for(delay_step_done(broker_api, delayed), 30, "the delayed-delivery bindings")
    key = uuid.uuid4().hex
    with Connection(env["GROWBIN_BROKER_URL"]) as conn:
        sent = time.monotonic()
        result = app.send_task("growbin.testing.record", args=(key, 7), countdown=8)
        held = wait_for(lambda: delayed_depth(conn), 10, "the message in a celery_delayed_* queue")
        waiting_in_queue = depth(conn, "q.work")
        assert not r.hexists(f"execs:{key}", "7")
    assert result.get(timeout=60) == 7
    took = time.monotonic() - sent
    print(
        f"\ncountdown 8 s: {held} message(s) in the delay queues, {waiting_in_queue} in q.work "
        f"while it waited; ran after {took:.1f} s"
    )
    assert waiting_in_queue == 0  # nothing for the worker to reserve and hold until its ETA
    assert took >= 8 - 0.5


def test_a_retry_waits_in_rabbitmq_then_runs_again(broker_api, delayed, env, app, r, start_worker):
    worker = start_worker("work", TOPOLOGY, env=env)
    worker.wait_for_log("ready", timeout=90)
    wait_for(delay_step_done(broker_api, delayed), 30, "the delayed-delivery bindings")
    key = uuid.uuid4().hex
    with Connection(env["GROWBIN_BROKER_URL"]) as conn:
        result = app.send_task("growbin.testing.flaky", args=(key,))
        wait_for(lambda: r.llen(f"times:{key}") == 1, 30, "the first attempt")
        held = wait_for(lambda: delayed_depth(conn), 10, "the retry in a celery_delayed_* queue")
        assert depth(conn, "q.work") == 0
        r.set(f"fixed:{key}", 1)  # the upstream recovers: the retry succeeds
    assert result.get(timeout=60) == "ok"
    first, second = (float(t) for t in r.lrange(f"times:{key}", 0, -1))
    print(f"\nretry: {held} message(s) in the delay queues; ran again after {second - first:.2f} s")
    assert second - first >= 4 - 0.5  # backoff 4 s, no jitter


# acks_late: false in a profile is honoured


def unacked_while_running(broker_api, vhost: str, result, seconds: float) -> int:
    """The most unacknowledged messages q.work showed while the task ran (stats lag ~5 s)."""
    most = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not result.ready():
        stats = broker_api.queue_stats(vhost, "q.work")
        if stats is not None and stats.messages_unacknowledged is not None:
            most = max(most, stats.messages_unacknowledged)
        time.sleep(0.25)
    return most


@pytest.mark.parametrize(("profile", "acked_on_receipt"), [("early", True), ("work", False)])
def test_a_profile_decides_whether_a_task_is_acked_on_receipt_or_after_it_ran(
    broker_api, temp_vhost, env, app, start_worker, profile, acked_on_receipt
):
    worker = start_worker(profile, TOPOLOGY, env=env)
    worker.wait_for_log("ready", timeout=90)
    key = uuid.uuid4().hex
    result = app.send_task("growbin.testing.nap", args=(key, 1, 12.0))
    most = unacked_while_running(broker_api, temp_vhost, result, seconds=14)
    assert result.get(timeout=60) == 1
    print(f"\nprofile {profile}: at most {most} unacknowledged message(s) while the task ran")
    assert most == (0 if acked_on_receipt else 1)


def test_a_failure_on_an_early_acking_profile_is_still_dead_lettered(env, app, r, start_worker):
    worker = start_worker("early", TOPOLOGY, env=env)
    worker.wait_for_log("ready", timeout=90)
    key = uuid.uuid4().hex
    app.send_task("growbin.testing.fatal", args=(key,))
    with Connection(env["GROWBIN_BROKER_URL"]) as conn:
        channel = conn.default_channel
        message = wait_for(lambda: channel.basic_get("q.dlq", no_ack=True), 30, "a dead letter")
    death = message.headers[DEATH_HEADER]
    assert death["reason"] == "failed" and death["exception_type"] == "builtins.ValueError"
    assert len(r.lrange(f"times:{key}", 0, -1)) == 1
