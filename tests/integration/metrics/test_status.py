"""`growbin status` against the real broker, database and a running worker."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr
from tests.integration.metrics.test_worker_metrics import TASK_MODULES, TOPOLOGY

from growbin.ops.deadletters.service import DeadLetterService
from growbin.ops.status import take_snapshot
from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration


def test_status_shows_depth_consumers_dead_letters_by_reason_and_the_profile_online(
    broker_api, temp_vhost, service_env, database_url, rabbitmq_api_url, start_worker, tmp_path
):
    topology = loader.load(TOPOLOGY).topology.model_copy(update={"vhost": temp_vhost})
    apply(topology, broker_api)
    env = {
        **service_env,
        "GROWBIN_TOPOLOGY": TOPOLOGY,
        "GROWBIN_TASK_MODULES": TASK_MODULES,
        "GROWBIN_METRICS_PORT": "0",
    }
    settings = load_settings(
        env="test",
        broker_url=SecretStr(env["GROWBIN_BROKER_URL"]),
        rabbitmq_api_url=SecretStr(rabbitmq_api_url),
        redis_url=SecretStr(env["GROWBIN_REDIS_URL"]),
        database_url=SecretStr(database_url),
        topology=TOPOLOGY,
        task_modules=TASK_MODULES,
    )
    worker = start_worker("work", TOPOLOGY, "--concurrency=2", env=env)
    worker.wait_for_log("ready", timeout=60)
    app = create_app(settings, loader.load(TOPOLOGY), registrars=registrars(settings))
    try:
        for n in range(3):
            app.send_task("growbin.testing.fatal", args=(f"k{n}",))
    finally:
        app.close()

    deadline = time.monotonic() + 40  # the management API's figures lag up to 5 s
    while True:
        snap = take_snapshot(settings, topology, inspect_timeout=2.0)
        queues = {q.name: q for q in snap.queues}
        if (queues["q.dlq"].messages == 3 and queues["q.work"].consumers) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(1)
    assert queues["q.dlq"].messages == 3
    assert queues["q.work"].consumers == 1
    assert snap.dead_letter_source == "archive" and snap.dead_letters == {}

    with DeadLetterService(settings, topology) as service:
        service.sync()
    snap = take_snapshot(settings, topology, inspect_timeout=2.0)
    assert snap.dead_letters == {"failed": 3}
    (work,) = [p for p in snap.profiles if p.profile == "work"]
    assert len(work.hosts) == 1 and work.hosts[0].startswith("work@")
    assert work.queues == ["q.work"]
    assert work.progress == "ok" and work.stalled == []  # its progress record, from Redis
    print(f"\nstatus: {snap.to_dict()['queues'][0]}, dead letters {snap.dead_letters}")
