"""Retries, dead letters and redelivery with real workers, RabbitMQ and Redis.

Each test prints what it measured (attempts, delays, counts); `pytest -s` shows the report.
"""

from __future__ import annotations

import itertools
import time
import uuid

import pytest
import redis
from kombu import Connection

from growbin.runtime.celery_app import create_app
from growbin.runtime.deadletter import DEATH_HEADER
from growbin.runtime.registry import registrars
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

TOPOLOGY = "tests/fixtures/topologies/execution.yaml"


@pytest.fixture
def env(broker_api, temp_vhost, service_env):
    loaded = loader.load(TOPOLOGY)
    apply(loaded.topology.model_copy(update={"vhost": temp_vhost}), broker_api)
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


def dead_letters(env, timeout: float = 30.0, expect: int = 1) -> list[dict]:
    """Take the messages out of q.dlq (waiting for ``expect`` of them) and return their headers."""
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    with Connection(env["GROWBIN_BROKER_URL"]) as conn:
        channel = conn.default_channel
        while time.monotonic() < deadline and len(found) < expect:
            message = channel.basic_get("q.dlq", no_ack=True)
            if message is None:
                time.sleep(0.2)
                continue
            found.append(message.headers)
    return found


def times(r, key: str) -> list[float]:
    return [float(t) for t in r.lrange(f"times:{key}", 0, -1)]


def test_a_transient_failure_retries_with_growing_delays_then_dead_letters(
    env, app, r, start_worker
):
    start_worker("work", TOPOLOGY, env=env)
    key = uuid.uuid4().hex
    result = app.send_task("growbin.testing.flaky", args=(key,))
    [headers] = dead_letters(env, timeout=60)
    attempts = times(r, key)
    delays = [b - a for a, b in itertools.pairwise(attempts)]
    print(f"\ntransient: {len(attempts)} attempts, delays {[round(d, 2) for d in delays]} s")
    assert len(attempts) == 4  # max_retries 3, plus the first run
    assert delays[2] > delays[0]
    death = headers[DEATH_HEADER]
    assert death["reason"] == "failed"
    assert death["attempts"] == 4
    assert death["retryable"] is True
    assert death["exception_type"] == "growbin.errors.TransientTaskError"
    assert "503" in death["exception_message"]
    assert death["queue"] == "q.work" and death["routing_key"] == "work.flaky"
    assert death["first_failure"] < death["last_failure"]
    assert "TransientTaskError" in death["traceback"]
    assert headers["id"] == result.id and headers["task"] == "growbin.testing.flaky"
    assert result.state == "FAILURE"


def test_a_fatal_error_dead_letters_after_one_attempt(env, app, r, start_worker):
    start_worker("work", TOPOLOGY, env=env)
    key = uuid.uuid4().hex
    app.send_task("growbin.testing.fatal", args=(key,))
    [headers] = dead_letters(env)
    death = headers[DEATH_HEADER]
    assert len(times(r, key)) == 1
    assert death["attempts"] == 1 and death["retryable"] is False
    assert death["exception_type"] == "builtins.ValueError"
    assert "not a known category" in death["exception_message"]


def test_a_task_past_its_hard_time_limit_is_dead_lettered(env, app, r, start_worker):
    start_worker("work", TOPOLOGY, env=env)
    key = uuid.uuid4().hex
    app.send_task("growbin.testing.stuck", args=(key,))
    [headers] = dead_letters(env, timeout=40)
    death = headers[DEATH_HEADER]
    print(f"\nhard limit: {len(times(r, key))} run(s), {death['exception_type']}")
    assert death["exception_type"] == "billiard.exceptions.TimeLimitExceeded"
    assert death["reason"] == "failed"
    assert len(times(r, key)) == 1


def test_a_message_left_past_its_queue_ttl_is_dead_lettered_as_expired(env, app):
    app.send_task("growbin.testing.expire")
    [headers] = dead_letters(env, timeout=30)
    assert DEATH_HEADER not in headers
    assert headers["x-first-death-reason"] == "expired"
    assert headers["x-first-death-queue"] == "q.idle"
    assert headers["task"] == "growbin.testing.expire"


def test_a_poison_message_is_dead_lettered_at_the_delivery_limit_while_others_run(
    env, app, r, start_worker
):
    worker = start_worker("work", TOPOLOGY, env=env)
    key = uuid.uuid4().hex
    app.send_task("growbin.testing.poison", args=(key,))
    healthy = [app.send_task("growbin.testing.record", args=(key, n)) for n in range(20)]
    assert sorted(res.get(timeout=60) for res in healthy) == list(range(20))
    [headers] = dead_letters(env, timeout=90)
    runs = len(times(r, key))
    print(f"\npoison: killed its pool process {runs} times, then {headers['x-first-death-reason']}")
    assert headers["x-first-death-reason"] == "delivery_limit"
    assert runs >= 3
    assert worker.proc.poll() is None  # the worker itself survived


def test_kill_9_of_a_worker_during_1000_tasks_loses_none(env, app, r, start_worker):
    key = uuid.uuid4().hex
    first = start_worker("work", TOPOLOGY, env=env)
    results = [app.send_task("growbin.testing.record", args=(key, n)) for n in range(1000)]
    deadline = time.monotonic() + 60
    while r.hlen(f"execs:{key}") < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    executed_before_kill = r.hlen(f"execs:{key}")
    first.kill()  # SIGKILL to the main process and its pool children
    first.proc.wait(timeout=10)
    start_worker("work", TOPOLOGY, env=env)
    values = [res.get(timeout=120) for res in results]
    counts = {int(k): int(v) for k, v in r.hgetall(f"execs:{key}").items()}
    duplicates = sum(1 for c in counts.values() if c > 1)
    print(
        f"\nkill -9: killed after {executed_before_kill} executions; "
        f"{len(counts)} distinct tasks executed, {sum(counts.values())} executions, "
        f"{duplicates} duplicate(s), 0 lost"
    )
    assert 0 < executed_before_kill < 1000
    assert sorted(values) == list(range(1000))
    assert set(counts) == set(range(1000))
