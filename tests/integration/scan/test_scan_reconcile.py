"""Every scan reaches a terminal state, even when the hook that marks it failed cannot.

The dead-letter sync (growbin.ops.dlq_sync, every 60 s on the beat) reconciles scans with the
dead-letter archive, and fails scans that made no progress for longer than the topology allows.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kombu import Connection
from pydantic import SecretStr
from tests.integration.journal import conftest as journal_fixtures
from tests.integration.ops.test_deadletters import celery_message, publish
from tests.integration.scan import test_pipeline

from growbin.db.engine import make_engine, session_factory
from growbin.runtime.celery_app import create_app
from growbin.runtime.deadletter import DEATH_HEADER, DeathInfo, now_iso
from growbin.runtime.registry import registrars
from growbin.scan.records import Scan, ScanStatus
from growbin.scan.samples import load_manifest, sample_bytes
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.loader import LoadedTopology
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

fake_openai = test_pipeline.fake_openai
clean_redis = test_pipeline.clean_redis
platform = test_pipeline.platform
# a PostgreSQL cluster of the test's own, migrated, that the test may stop and start
private_postgres = journal_fixtures.temp_postgres


def dlq_depth(broker_url: str) -> int:
    with Connection(broker_url, connect_timeout=5) as conn:
        return int(conn.default_channel.queue_declare("q.dlq", passive=True).message_count)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_a_scan_whose_failure_marking_could_not_reach_postgresql_ends_failed_after_the_sync(
    broker_api,
    temp_vhost,
    service_env,
    tmp_path,
    fake_openai,
    clean_redis,
    start_worker,
    private_postgres,
):
    # no retries for the vision step (its route's policy and its profile's), so its first
    # failure is its dead letter
    text = loader.preset_path("pipeline").read_text()
    for ai_retry in (
        "retry: {max_retries: 5, backoff_base: 30, backoff_max: 240, jitter: true}",
        "retry: {max_retries: 3, backoff_base: 20, backoff_max: 120}",
    ):
        assert ai_retry in text
        text = text.replace(ai_retry, "retry: {max_retries: 0}")
    path = tmp_path / "pipeline-no-ai-retries.yaml"
    path.write_text(text)
    env, app, ctx = platform(
        path, broker_api, temp_vhost, service_env, private_postgres.url, tmp_path, fake_openai
    )
    start_worker("storage", str(path), env=env)
    ai = start_worker("ai", str(path), env=env)
    fake_openai.mode = "error500"
    fake_openai.latency = 8.0  # the vision call is in flight while PostgreSQL goes down
    from growbin.scan.intake import submit_scan

    name = next(iter(load_manifest()))
    try:
        scan_id = submit_scan(app, ctx, sample_bytes(name), filename=name, owner="t").scan_id

        def classify_started():
            with ctx.session() as session:
                steps = session.get(Scan, scan_id).steps
            return steps.get("classify", {}).get("state") == "started"

        wait_for(classify_started, 90, "the classify step to start")
        private_postgres.stop()
        wait_for(lambda: dlq_depth(env["GROWBIN_BROKER_URL"]) == 1, 60, "the dead letter")
        ai.wait_for_log(scan_id, timeout=30)  # the hook said it could not mark the scan
        private_postgres.start()
        with ctx.session() as session:
            before = session.get(Scan, scan_id).status
        assert before == ScanStatus.RUNNING, "the hook reached PostgreSQL: nothing to reconcile"

        counts = app.send_task("growbin.ops.dlq_sync").get(timeout=90)

        with ctx.session() as session:
            scan = session.get(Scan, scan_id).as_dict()
        assert scan["status"] == "failed"
        assert counts["scans_failed"] == 1
        assert scan["steps"]["classify"]["state"] == "failed"
        # the 8 s answer outlives the client's 5 s timeout: ProviderTimeoutError
        error = scan["steps"]["classify"]["error"]
        assert error.startswith("growbin.scan.providers.errors.Provider"), error
        assert scan["error"].startswith(f"classify failed: {error}: ")
        # the task failed with the provider's error, not with the hook's database error
        assert "raised unexpected: ServiceUnavailableError" not in ai.output()
    finally:
        app.close()
        ctx.engine.dispose()


@pytest.fixture
def production(broker_api, temp_vhost, database_url, rabbitmq_api_url, redis_url):
    """The production topology on the test vhost; an app whose dlq_sync task runs in process."""
    topology = loader.load("production").topology.model_copy(update={"vhost": temp_vhost})
    apply(topology, broker_api)
    broker_url = f"amqp://guest:guest@127.0.0.1:5672/{temp_vhost}"
    settings = load_settings(
        env="test",
        broker_url=SecretStr(broker_url),
        database_url=SecretStr(database_url),
        rabbitmq_api_url=SecretStr(rabbitmq_api_url),
        redis_url=SecretStr(redis_url),
    )
    app = create_app(
        settings, LoadedTopology(topology, "test", {}), registrars=registrars(settings)
    )
    engine = make_engine(settings)
    conn = Connection(broker_url, connect_timeout=5)
    conn.connect()
    channel = conn.channel()
    channel.auto_decode = False
    yield app, session_factory(engine), channel, topology
    conn.release()
    engine.dispose()
    app.close()


def new_scan(sessions, *, status="running", steps=None, updated_at=None) -> str:
    scan_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    with sessions.begin() as session:
        session.add(
            Scan(
                id=scan_id,
                owner="reconcile-test",
                status=status,
                raw_key=f"scans/{scan_id}/raw.jpg",
                sha256="0" * 64,
                steps={"preprocess": {"state": "done"}} if steps is None else steps,
                created_at=updated_at or now,
                updated_at=updated_at or now,
            )
        )
    return scan_id


def scan_of(sessions, scan_id):
    with sessions() as session:
        return session.get(Scan, scan_id).as_dict()


def wait_dlq(channel, expected, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        found = channel.queue_declare(queue="q.dlq", passive=True).message_count
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def publish_step_dead_letter(channel, scan_id, step="guidance", *, error="ProviderOutputError"):
    """What a worker publishes when a scan step fails for good (its hook then marks the scan)."""
    task, task_id = f"growbin.scan.{step}", str(uuid.uuid4())
    state = {"scan_id": scan_id, "phash": "0" * 16, "hint": None}
    body, headers, properties = celery_message(task, task_id, args=(state,))
    info = DeathInfo(
        reason="failed",
        task=task,
        task_id=task_id,
        exchange="tasks",
        routing_key="ai.feedback",
        queue="q.ai",
        attempts=4,
        first_failure=now_iso(),
        last_failure=now_iso(),
        exception_type=f"growbin.scan.providers.errors.{error}",
        exception_message="openai returned unusable output",
        traceback="",
        retryable=True,
        worker="ai@host",
    )
    publish(channel, "dlx", "dlq", body, {**headers, DEATH_HEADER: info.as_header()}, properties)
    return info


def test_a_worker_dead_letter_whose_hook_never_marked_the_scan_fails_it_at_the_sync(production):
    app, sessions, channel, _ = production
    scan_id = new_scan(sessions)
    untouched = new_scan(sessions)
    publish_step_dead_letter(channel, scan_id)
    assert wait_dlq(channel, 1) == 1

    counts = app.tasks["growbin.ops.dlq_sync"]()

    scan = scan_of(sessions, scan_id)
    assert scan["status"] == "failed"
    assert counts["scans_failed"] == 1
    assert scan["steps"]["guidance"]["state"] == "failed"
    assert scan["error"] == (
        "guidance failed: growbin.scan.providers.errors.ProviderOutputError: "
        "openai returned unusable output"
    )
    assert scan_of(sessions, untouched)["status"] == "running"
    assert app.tasks["growbin.ops.dlq_sync"]()["scans_failed"] == 0


def test_a_scan_step_that_rabbitmq_dead_lettered_fails_its_scan_at_the_sync(production):
    app, sessions, channel, _ = production
    scan_id = new_scan(sessions)
    state = {"scan_id": scan_id, "phash": "0" * 16, "hint": None}
    body, headers, properties = celery_message(
        "growbin.scan.classify", str(uuid.uuid4()), args=(state,)
    )
    # nothing consumes q.ai here: a 1 ms TTL makes RabbitMQ dead-letter it as expired
    publish(channel, "tasks", "ai.analyze", body, headers, {**properties, "expiration": "1"})
    assert wait_dlq(channel, 1) == 1

    app.tasks["growbin.ops.dlq_sync"]()

    scan = scan_of(sessions, scan_id)
    assert scan["status"] == "failed"
    assert scan["steps"]["classify"]["state"] == "failed"
    assert scan["error"] == "classify failed: RabbitMQ dead-lettered it (expired)"


def test_a_dead_letter_of_a_step_that_succeeded_since_leaves_its_scan_alone(production):
    app, sessions, channel, _ = production
    steps = {"preprocess": {"state": "done"}, "guidance": {"state": "done"}}
    scan_id = new_scan(sessions, steps=steps)
    publish_step_dead_letter(channel, scan_id, "guidance")
    assert wait_dlq(channel, 1) == 1

    counts = app.tasks["growbin.ops.dlq_sync"]()

    assert scan_of(sessions, scan_id)["status"] == "running"
    assert counts["scans_failed"] == 0


def test_a_scan_without_progress_beyond_the_topology_bound_is_failed_naming_the_cause(
    production,
):
    from growbin.scan.reconcile import stall_bound

    app, sessions, _, topology = production
    bound = stall_bound(topology, app.growbin_settings)
    assert bound is not None
    now = datetime.now(UTC)
    stalled = new_scan(
        sessions,
        steps={"preprocess": {"state": "done"}, "classify": {"state": "started"}},
        updated_at=now - timedelta(seconds=bound + 120),
    )
    queued = new_scan(sessions, status="queued", steps={}, updated_at=now - timedelta(days=2))
    recent = new_scan(sessions, updated_at=now - timedelta(seconds=bound - 120))

    counts = app.tasks["growbin.ops.dlq_sync"]()

    assert counts["scans_stalled"] >= 2
    scan = scan_of(sessions, stalled)
    assert scan["status"] == "failed"
    assert scan["steps"]["classify"]["state"] == "failed"
    assert scan["error"].startswith("classify stalled: no progress for ")
    assert f"(the topology allows {bound:.0f}s" in scan["error"]
    never_started = scan_of(sessions, queued)
    assert never_started["status"] == "failed"
    assert never_started["error"].startswith("preprocess stalled: ")
    assert scan_of(sessions, recent)["status"] == "running"


def test_the_dead_letter_hook_logs_and_returns_when_postgresql_is_unreachable(
    temp_vhost, redis_url, caplog
):
    from growbin.runtime.kv import RedisKV
    from growbin.scan.context import ScanContext, attach_scan_context

    settings = load_settings(
        env="test",
        broker_url=SecretStr(f"amqp://guest:guest@127.0.0.1:5672/{temp_vhost}"),
        database_url=SecretStr("postgresql+psycopg://postgres@127.0.0.1:1/growbin"),
        redis_url=SecretStr(redis_url),
    )
    topology = loader.load("production").topology.model_copy(update={"vhost": temp_vhost})
    app = create_app(
        settings, LoadedTopology(topology, "test", {}), registrars=registrars(settings)
    )
    attach_scan_context(app, ScanContext.build(settings, kv=RedisKV(redis_url)))
    info = DeathInfo(
        reason="failed",
        task="growbin.scan.rules",
        task_id="t-1",
        exchange="tasks",
        routing_key="ai.classify",
        queue="q.ai",
        attempts=1,
        first_failure=now_iso(),
        last_failure=now_iso(),
        exception_type="builtins.KeyError",
        exception_message="'item'",
        traceback="",
        retryable=False,
        worker="ai@host",
    )
    try:
        with caplog.at_level(logging.WARNING, logger="growbin.scan"):
            app.tasks["growbin.scan.rules"].on_dead_letter(info, ({"scan_id": "abc123"},), {})
    finally:
        app.close()

    (record,) = [r for r in caplog.records if "abc123" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "PostgreSQL" in record.getMessage()
    assert "growbin.ops.dlq_sync" in record.getMessage()
