"""A real worker process against a topology applied to a fresh vhost."""

import os
import subprocess
import sys

import pytest

from growbin.errors import TopologyLintError
from growbin.runtime.celery_app import UnroutedTaskError, create_app
from growbin.runtime.registry import ALL_TASKS
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import ChangeKind, apply, plan

pytestmark = pytest.mark.integration

SEED_000 = "tests/fixtures/seeds/seed_000.yaml"


def _app(service_env, topology: str):
    settings = load_settings(
        broker_url=service_env["GROWBIN_BROKER_URL"], redis_url=service_env["GROWBIN_REDIS_URL"]
    )
    return create_app(settings, loader.load(topology), registrars=ALL_TASKS)


def _with_vhost(loaded, vhost):
    return loaded.topology.model_copy(update={"vhost": vhost})


def test_a_worker_runs_tasks_routed_by_the_topology(
    broker_api, temp_vhost, service_env, start_worker
):
    apply(_with_vhost(loader.load("production"), temp_vhost), broker_api)
    worker = start_worker("api", "production")
    app = _app(service_env, "production")
    try:
        result = app.send_task("growbin.demo.add", args=(2, 3))
        assert result.get(timeout=60) == 5
        assert "api@" in worker.output()
    finally:
        app.close()


def test_changing_a_limit_updates_a_policy_and_the_worker_still_starts(
    broker_api, temp_vhost, service_env, start_worker, tmp_path
):
    apply(_with_vhost(loader.load("production"), temp_vhost), broker_api)
    first = start_worker("api", "production")
    app = _app(service_env, "production")
    try:
        assert app.send_task("growbin.demo.add", args=(1, 1)).get(timeout=60) == 2
        first.stop()

        text = loader.preset_path("production").read_text()
        changed = text.replace(
            "message_ttl: 300\n    max_length: 2000", "message_ttl: 900\n    max_length: 2500"
        )
        assert changed != text
        path = tmp_path / "changed.yaml"
        path.write_text(changed)
        changed_topology = _with_vhost(loader.load(str(path)), temp_vhost)

        diff = plan(changed_topology, broker_api)
        updated = [c for c in diff if c.kind is ChangeKind.UPDATE_POLICY]
        assert [c.name for c in updated] == ["growbin.q.q.api"]
        assert "message-ttl 300000 -> 900000" in "\n".join(diff.render())
        apply(changed_topology, broker_api)

        second = start_worker("api", str(path))
        assert app.send_task("growbin.demo.add", args=(20, 22)).get(timeout=60) == 42
        assert "inequivalent arg" not in second.output()
        assert "PRECONDITION_FAILED" not in second.output()
    finally:
        app.close()


def test_a_worker_refuses_a_topology_with_lint_errors(service_env):
    proc = subprocess.run(
        [sys.executable, "-m", "growbin.cli", "--topology", SEED_000, "worker", "--profile", "ai"],
        env={**os.environ, **service_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "GB101" in proc.stderr and "seed_000.yaml:32" in proc.stderr
    assert "celery@" not in proc.stdout


def test_create_app_refuses_a_topology_with_lint_errors():
    with pytest.raises(TopologyLintError, match="GB101"):
        create_app(load_settings(), loader.load(SEED_000))


def test_publishing_a_task_without_a_route_names_the_task_and_the_fix(service_env):
    app = _app(service_env, "production")
    try:
        with pytest.raises(UnroutedTaskError, match=r"'growbin.nope' has no route.*add it under"):
            app.send_task("growbin.nope")
    finally:
        app.close()


def test_plan_with_the_management_api_down_names_the_service_and_url():
    proc = subprocess.run(
        [sys.executable, "-m", "growbin.cli", "topology", "plan"],
        env={**os.environ, "GROWBIN_RABBITMQ_API_URL": "http://ops:s3cret@127.0.0.1:1/api"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    assert "RabbitMQ management API" in proc.stderr
    assert "127.0.0.1:1" in proc.stderr
    assert "s3cret" not in proc.stderr
