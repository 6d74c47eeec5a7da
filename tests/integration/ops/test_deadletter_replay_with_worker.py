"""The whole loop with a real worker: a task dies, the tools say why, a replay makes it succeed."""

import time
import uuid

import pytest
import redis

from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.service import DeadLetterService
from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

TOPOLOGY = "tests/fixtures/topologies/execution.yaml"
TASK_MODULES = "tests.integration.tasks"


@pytest.fixture
def settings(broker_api, temp_vhost, service_env, database_url):
    loaded = loader.load(TOPOLOGY)
    apply(loaded.topology.model_copy(update={"vhost": temp_vhost}), broker_api)
    return load_settings(
        env="test",
        broker_url=service_env["GROWBIN_BROKER_URL"],
        redis_url=service_env["GROWBIN_REDIS_URL"],
        database_url=database_url,
        topology=TOPOLOGY,
        task_modules=TASK_MODULES,
    )


def wait_for(probe, timeout, what):
    deadline = time.monotonic() + timeout
    while (value := probe()) is None or value is False:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)
    return value


def fresh_meta(app, task_id, state):
    """The stored result, bypassing Celery's cache (which keeps the first ready state)."""
    meta = app.backend.get_task_meta(task_id, cache=False)
    return meta if meta["status"] == state else None


def test_a_task_that_failed_for_good_succeeds_after_replay_under_the_same_task_id(
    settings, service_env, start_worker
):
    loaded = loader.load(TOPOLOGY)
    app = create_app(settings, loaded, registrars=registrars(settings))
    r = redis.Redis.from_url(service_env["GROWBIN_REDIS_URL"])
    start_worker("work", TOPOLOGY, env={"GROWBIN_TASK_MODULES": TASK_MODULES})
    key = uuid.uuid4().hex
    only_this = DeadLetterFilter.from_options(task="growbin.testing.flaky")
    try:
        with DeadLetterService(settings, loaded.topology) as service:
            result = app.send_task("growbin.testing.flaky", args=(key,))

            record = wait_for(
                lambda: next(iter(service.list(only_this)), None), 90, "the dead letter"
            )
            assert record.task_id == result.id
            assert (record.reason, record.attempts) == ("failed", 4)
            assert record.exception_type == "growbin.errors.TransientTaskError"
            assert result.state == "FAILURE"

            r.set(f"fixed:{key}", 1)  # the upstream is healthy again
            report = service.replay([record.dead_letter_id])

            assert [item.task_id for item in report.replayed] == [result.id]
            meta = wait_for(
                lambda: fresh_meta(app, result.id, "SUCCESS"), 60, "the replay's success"
            )
            assert meta["result"] == "ok"
            assert len(r.lrange(f"times:{key}", 0, -1)) == 5  # 4 failed attempts, 1 replay
            assert service.list(only_this) == []
            assert service.show(record.dead_letter_id).state == "replayed"
    finally:
        r.delete(f"fixed:{key}", f"times:{key}")
        r.close()
        app.close()
