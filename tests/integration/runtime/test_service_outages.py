"""Outages of our own services (Redis, PostgreSQL) with real workers: retried, never leaked.

The worker's Redis (result backend and key-value store) is a private ``redis-server`` that the
test kills and starts again on the same port; the shared Redis on 6379 counts what the tasks
did. Each test prints what it measured; `pytest -s` shows the report.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from kombu import Connection
from pydantic import SecretStr
from sqlalchemy import text

from growbin.db.engine import make_engine, session_factory, translate_errors
from growbin.errors import ServiceUnavailableError
from growbin.ops.status import take_snapshot
from growbin.runtime.celery_app import create_app
from growbin.runtime.deadletter import DEATH_HEADER
from growbin.runtime.failures import is_transient
from growbin.runtime.kv import RedisKV
from growbin.runtime.progress import read_progress_file
from growbin.runtime.registry import registrars
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

TOPOLOGY = "tests/fixtures/topologies/outages.yaml"
TASK_MODULES = "tests.integration.runtime.outage_tasks"


@pytest.fixture
def env(broker_api, temp_vhost, service_env, redis_url, private_redis):
    loaded = loader.load(TOPOLOGY)
    apply(loaded.topology.model_copy(update={"vhost": temp_vhost}), broker_api)
    return {
        **service_env,
        "GROWBIN_REDIS_URL": private_redis.url(),
        "GROWBIN_TEST_COUNTER_URL": redis_url,
        "GROWBIN_TOPOLOGY": TOPOLOGY,
        "GROWBIN_TASK_MODULES": TASK_MODULES,
        "GROWBIN_METRICS_PORT": "0",
    }


@pytest.fixture
def app(env):
    settings = load_settings(
        env="test",
        broker_url=SecretStr(env["GROWBIN_BROKER_URL"]),
        redis_url=SecretStr(env["GROWBIN_REDIS_URL"]),
        topology=TOPOLOGY,
        task_modules=TASK_MODULES,
    )
    celery_app = create_app(settings, loader.load(TOPOLOGY), registrars=registrars(settings))
    yield celery_app
    celery_app.close()


@pytest.fixture
def counter(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def wait_until(predicate, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def dead_letter_ids(env) -> dict[str, dict]:
    """Drain q.dlq: task id -> its growbin death header (or RabbitMQ's x-death reason)."""
    found: dict[str, dict] = {}
    with Connection(env["GROWBIN_BROKER_URL"]) as conn:
        channel = conn.default_channel
        while (message := channel.basic_get("q.dlq", no_ack=True)) is not None:
            headers = message.headers or {}
            found[str(headers.get("id"))] = headers.get(DEATH_HEADER) or {
                "reason": headers.get("x-first-death-reason")
            }
    return found


def test_the_key_value_store_names_a_stopped_redis_as_a_retryable_outage(private_redis):
    kv = RedisKV(private_redis.url())
    kv.set("k", "v")
    private_redis.kill()
    with pytest.raises(ServiceUnavailableError) as caught:
        kv.get("k")
    assert "Redis is not reachable" in str(caught.value)
    assert is_transient(caught.value)


def test_a_stopped_postgresql_is_a_retryable_outage_for_new_and_pooled_connections(
    private_postgres,
):
    settings = load_settings(env="test")
    engine = make_engine(settings, url=private_postgres.url)
    sessions = session_factory(engine)
    with translate_errors(engine), sessions.begin() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1  # the pool now holds a connection
    private_postgres.stop("immediate")
    raised: list[BaseException] = []
    for _ in range(2):  # the pooled connection (pre-ping), then a new one
        try:
            with translate_errors(engine), sessions.begin() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            raised.append(exc)
    engine.dispose()
    print(f"\npostgres down: {[type(e).__name__ + ': ' + str(e)[:80] for e in raised]}")
    assert len(raised) == 2
    assert all(isinstance(e, ServiceUnavailableError) for e in raised)
    assert all(is_transient(e) for e in raised)


def test_a_redis_outage_retries_tasks_and_leaves_no_message_unacked(
    env, app, counter, private_redis, broker_api, temp_vhost, start_worker
):
    """Redis (result backend and key-value store) dies for 22 s while tasks run on a threads
    pool with 4 prefetch slots; after it returns, every task ends without a restart.

    Before the fix: the key-value error was fatal (dead letter on attempt 1), and a result
    write that failed after the body left the message unacked for ever: 4 unacked, 6 ready,
    the worker idle, 150 s after Redis returned."""
    worker = start_worker("work", TOPOLOGY, env=env)
    worker.wait_for_log("ready", timeout=60)
    key = uuid.uuid4().hex
    # the two key-value tasks take both pool threads and wait for the outage; the naps
    # behind them run (and store their results) while Redis is down, or after
    kvs = [app.send_task("growbin.outage.remember", args=(key, 100 + n)) for n in range(2)]
    naps = [app.send_task("growbin.outage.nap", args=(key, n, 1.0)) for n in range(8)]
    ids = {r.id: n for r, n in zip(kvs + naps, [100, 101, *range(8)], strict=True)}
    time.sleep(3)
    private_redis.kill()
    counter.set(f"down:{key}", 1, ex=600)
    down_at = time.monotonic()
    time.sleep(22)
    private_redis.start()
    print(f"\nredis down for {time.monotonic() - down_at:.1f} s")

    def settled() -> bool:
        stats = broker_api.queue_stats(temp_vhost, "q.work")
        return stats is not None and stats.messages == 0 and stats.messages_unacknowledged == 0

    ok = wait_until(settled, timeout=150, interval=1.0)
    stats = broker_api.queue_stats(temp_vhost, "q.work")
    ran = {int(n) for n in counter.hkeys(f"ran:{key}")}
    dead = {ids[i]: d for i, d in dead_letter_ids(env).items() if i in ids}
    tries = {int(n): int(c) for n, c in counter.hgetall(f"tries:{key}").items()}
    print(f"q.work after: {stats}; ran {sorted(ran)}; dead-lettered {dead}; kv tries {tries}")
    held = f"messages left in q.work (the worker holds them): {stats}"
    assert ok, f"{held}\n{worker.output()[-3000:]}"
    assert worker.proc.poll() is None  # no restart
    assert "could not record" in worker.output()  # the settlement path was taken
    # every task ended: it ran to the end, or its dead letter says why
    assert set(ids.values()) <= ran | set(dead)
    # a key-value outage was retried, not dead-lettered on its first attempt
    assert all(tries.get(n, 0) >= 2 for n in (100, 101)), tries
    assert not {n for n in dead if n >= 100}
    # the worker still works, with all its slots
    after = [app.send_task("growbin.outage.nap", args=(key, 200 + n, 0.1)) for n in range(8)]
    assert sorted(r.get(timeout=60) for r in after) == [200 + n for n in range(8)]


def test_a_worker_holding_messages_without_progress_is_stalled_in_status_and_its_file(
    env, app, counter, private_redis, broker_api, temp_vhost, start_worker, tmp_path
):
    progress_dir = tmp_path / "progress"
    worker = start_worker(
        "work",
        TOPOLOGY,
        env={
            **env,
            "GROWBIN_WORKER_STALL_AFTER": "4",
            "GROWBIN_WORKER_PROGRESS_DIR": str(progress_dir),
        },
    )
    worker.wait_for_log("ready", timeout=60)
    settings = load_settings(
        env="test",
        broker_url=SecretStr(env["GROWBIN_BROKER_URL"]),
        rabbitmq_api_url=SecretStr(env["GROWBIN_RABBITMQ_API_URL"]),
        redis_url=SecretStr(env["GROWBIN_REDIS_URL"]),
        topology=TOPOLOGY,
    )
    topology = loader.load(TOPOLOGY).topology.model_copy(update={"vhost": temp_vhost})
    key = uuid.uuid4().hex
    for _ in range(4):  # 2 threads, 4 prefetch slots: all held, none ends for 90 s
        app.send_task("growbin.outage.hang", args=(key, 90.0), ignore_result=True)

    def profile():
        (work,) = [p for p in take_snapshot(settings, topology).profiles if p.profile == "work"]
        return work

    assert wait_until(lambda: profile().progress == "stalled", timeout=60, interval=1.0)
    (stalled,) = profile().stalled
    files = list(progress_dir.glob("*.json"))
    on_disk = read_progress_file(files[0]) if files else None
    print(f"\nstalled: {stalled}; file {on_disk}")
    assert stalled.worker.startswith("work@") and stalled.reserved == 4
    assert on_disk is not None and on_disk.stalled() and on_disk.reserved == 4
    assert "is stalled: it holds 4 message(s)" in worker.output()

    private_redis.kill()  # status still answers, and says it cannot know
    snap = take_snapshot(settings, topology)
    (work,) = [p for p in snap.profiles if p.profile == "work"]
    assert work.progress == "unknown"
    assert any("worker progress unknown: Redis is not reachable" in n for n in snap.notes)
