"""One vhost for everything, and no process starts on a vhost where the topology is not in force.

Each test runs the real command (`growbin topology plan`, `growbin worker`, `growbin beat`) in a
subprocess against a temporary vhost of the RabbitMQ on this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tests.integration.workers import WorkerProcess

from growbin.topology import loader
from growbin.topology.plan import apply, plan

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 90  # a loaded two-core machine, several suites at once


def growbin(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "growbin.cli", *args],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def on(topology_name: str, vhost: str):
    return loader.load(topology_name).topology.model_copy(update={"vhost": vhost})


def test_plan_compares_against_the_vhost_the_broker_url_names(service_env, temp_vhost):
    proc = growbin("topology", "plan", "--format", "json", env=service_env)

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["vhost"] == temp_vhost
    # a fresh vhost: everything is still to create (on "/" the comparison would differ)
    kinds = {c["kind"] for c in result["changes"]}
    assert kinds == {"create", "bind"}


def test_apply_and_export_act_on_the_broker_urls_vhost(service_env, temp_vhost, broker_api):
    applied = growbin("topology", "apply", env=service_env)
    assert applied.returncode == 0, applied.stderr
    assert f"vhost {temp_vhost}:" in applied.stdout
    assert broker_api.get_queue(temp_vhost, "q.api") is not None
    assert not plan(on("production", temp_vhost), broker_api).has_changes

    exported = json.loads(growbin("topology", "export", env=service_env).stdout)
    assert exported["vhosts"] == [{"name": temp_vhost}]
    assert {q["vhost"] for q in exported["queues"]} == {temp_vhost}


def test_a_topology_naming_another_vhost_than_the_broker_url_is_refused(
    service_env, temp_vhost, tmp_path, broker_api
):
    data = yaml.safe_load(loader.preset_path("production").read_text())
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump({**data, "vhost": "/"}, sort_keys=False))

    proc = growbin("--topology", str(path), "topology", "plan", env=service_env)

    assert proc.returncode == 2
    message = " ".join(proc.stderr.split())
    assert "names vhost '/'" in message
    assert f"GROWBIN_BROKER_URL names vhost '{temp_vhost}'" in message
    assert "remove `vhost:` from the topology file" in message
    assert broker_api.list_queues(temp_vhost) == []


def test_a_worker_refuses_to_start_on_a_vhost_where_the_topology_was_never_applied(
    service_env, temp_vhost, broker_api, tmp_path
):
    worker = WorkerProcess.start("api", "production", service_env, tmp_path)
    try:
        code = worker.wait_exit(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        worker.stop()
    output = worker.output()

    assert code not in (None, 0), f"the worker kept running:\n{output[-3000:]}"
    text = " ".join(output.split())
    assert "growbin worker --profile api refuses to start" in text
    assert "+ create queue q.api (quorum)" in text
    assert "+ create policy growbin.q.q.api (message-ttl=300000" in text
    assert "+ create policy growbin.x.tasks (alternate-exchange=unroutable)" in text
    assert "run `growbin topology apply`" in text
    assert "ready" not in text
    # it refused before declaring anything: no q.api with only x-queue-type
    assert broker_api.get_queue(temp_vhost, "q.api") is None


def test_a_worker_starts_after_apply_and_again_after_its_own_declarations(
    service_env, temp_vhost, broker_api, start_worker
):
    assert growbin("topology", "apply", env=service_env).returncode == 0

    first = start_worker("api", "production")
    first.wait_for_log("ready", timeout=START_TIMEOUT)
    first.stop()
    # what the first worker declared (queues, delay exchange, delayed-delivery bindings) is
    # exactly the topology, so nothing drifted and a second start is allowed too
    assert plan(on("production", temp_vhost), broker_api).drift == []
    second = start_worker("api", "production")
    second.wait_for_log("ready", timeout=START_TIMEOUT)
    assert "refuses to start" not in second.output()


def test_a_worker_refuses_when_a_policy_it_depends_on_was_deleted(
    service_env, temp_vhost, broker_api, tmp_path
):
    apply(on("production", temp_vhost), broker_api)
    broker_api.delete_policy(temp_vhost, "growbin.q.q.dlq")  # where its dead letters go

    worker = WorkerProcess.start("api", "production", service_env, tmp_path)
    try:
        code = worker.wait_exit(timeout=START_TIMEOUT)
    finally:
        worker.stop()

    assert code != 0
    text = " ".join(worker.output().split())
    assert "+ create policy growbin.q.q.dlq" in text
    assert "growbin.q.q.batch" not in text  # only what the api profile depends on


def test_the_opt_out_lets_a_worker_start_on_an_unapplied_vhost_in_development(
    service_env, temp_vhost, tmp_path
):
    env = {**service_env, "GROWBIN_ENV": "development", "GROWBIN_SKIP_TOPOLOGY_CHECK": "true"}
    worker = WorkerProcess.start("api", "production", env, tmp_path)
    try:
        worker.wait_for_log("ready", timeout=START_TIMEOUT)
        assert "the topology check is skipped (GROWBIN_SKIP_TOPOLOGY_CHECK)" in worker.output()
    finally:
        worker.stop()


def test_the_opt_out_is_refused_in_production(service_env):
    env = {
        **service_env,
        "GROWBIN_ENV": "production",
        "GROWBIN_SKIP_TOPOLOGY_CHECK": "true",
        "GROWBIN_API_SECRET": "x" * 40,
    }
    proc = growbin("worker", "--profile", "api", env=env)
    assert proc.returncode == 2
    assert "GROWBIN_SKIP_TOPOLOGY_CHECK is set" in proc.stderr


def test_beat_refuses_to_start_on_a_vhost_where_the_topology_was_never_applied(
    service_env, temp_vhost, broker_api
):
    started = time.monotonic()
    try:
        proc = growbin("beat", env=service_env, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("beat kept running on an unapplied vhost")

    assert proc.returncode != 0
    text = " ".join((proc.stdout + proc.stderr).split())
    assert "growbin beat refuses to start" in text
    assert "+ create queue q.sched (quorum)" in text
    assert "run `growbin topology apply`" in text
    assert time.monotonic() - started < START_TIMEOUT


def test_an_undeclared_binding_is_drift_and_apply_removes_it(service_env, temp_vhost, broker_api):
    apply(on("production", temp_vhost), broker_api)
    # what Celery's delayed delivery used to add on the work exchange: external.ai.vision
    # then reached q.ai instead of q.unroutable
    broker_api.put_binding(temp_vhost, "tasks", "q.ai", "#.ai.*")
    assert broker_api.publish(temp_vhost, "tasks", "external.ai.vision", "stray")
    assert broker_api.get_messages(temp_vhost, "q.unroutable") == []

    planned = growbin("topology", "plan", env=service_env)
    assert "- unbind tasks -> q.ai [#.ai.*]" in planned.stdout

    assert growbin("topology", "apply", env=service_env).returncode == 0
    assert broker_api.publish(temp_vhost, "tasks", "external.ai.vision", "now unroutable")
    [message] = broker_api.get_messages(temp_vhost, "q.unroutable")
    assert message["payload"] == "now unroutable"
    assert plan(on("production", temp_vhost), broker_api).drift == []
