"""/healthz and /readyz: no key needed, detail only for admins, 503 when one fails, no secrets.

And the API's start check: it refuses to serve on a vhost where the topology is not in force.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest
import redis
from tests.integration.api.conftest import (
    API_SECRET,
    TASK_MODULES,
    api_settings,
    wait_until,
    write_api_topology,
)
from tests.integration.api.rabbit_node import free_port
from tests.integration.conftest import service_missing

pytestmark = pytest.mark.integration

CHECKS = {"broker", "redis", "postgresql", "topology"}


@pytest.fixture
def volatile_redis(tmp_path):
    """A Redis of the test's own that keeps nothing on disk (no AOF, no RDB snapshots)."""
    if shutil.which("redis-server") is None:
        service_missing("redis-server is not installed")
    port = free_port()
    volatile = ["--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            *volatile,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)


def admin_readyz(api) -> httpx.Response:
    return api.client(api.key("ops", "admin")).get("/readyz")


def test_healthz_answers_without_a_key(api):
    answer = api.client().get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_readyz_is_ready_when_every_dependency_answers_and_the_topology_is_applied(api):
    answer = admin_readyz(api)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert check["ok"] is True, (name, check)
        assert 0 <= check["seconds"] < 10


def test_anonymous_readyz_answers_only_the_status_and_names_no_dependency(api):
    answer = api.client().get("/readyz")
    assert answer.status_code == 200, answer.text
    # anonymous callers learn nothing about the services behind the API: not even which
    # ones there are, nor how fast each answers
    assert answer.json() == {"status": "ready"}
    for word in ("broker", "redis", "postgresql", "topology", "127.0.0.1", "guest", "vhost"):
        assert word not in answer.text


def test_readyz_gives_an_admin_each_checks_target_with_passwords_masked(api):
    answer = admin_readyz(api)
    assert answer.status_code == 200, answer.text
    checks = answer.json()["checks"]
    assert checks["broker"]["target"].startswith("amqp://guest:****@127.0.0.1:5672/")
    assert f"(vhost {api.runtime.topology.vhost})" in checks["topology"]["target"]
    assert ":guest@" not in answer.text


def test_a_non_admin_key_gets_no_detail_and_a_bad_key_is_refused(api):
    assert api.client(api.key("alice", "scans")).get("/readyz").json() == {"status": "ready"}
    assert api.client("gb_nope_nope").get("/readyz").status_code == 401


def test_readyz_reports_drift_when_someone_deletes_a_policy_while_the_api_runs(api, broker_api):
    vhost = api.runtime.topology.vhost
    assert api.client().get("/readyz").status_code == 200
    broker_api.delete_policy(vhost, "growbin.q.user_input")

    anonymous = api.client().get("/readyz")
    answer = admin_readyz(api)

    assert (anonymous.status_code, anonymous.json()) == (503, {"status": "not_ready"})
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    detail = checks["topology"]["detail"]
    assert not checks["topology"]["ok"]
    assert f"vhost '{vhost}' differs from topology 'api-test'" in detail
    assert "run `growbin topology apply`" in detail
    assert "+ create policy growbin.q.user_input" in detail
    assert all(checks[name]["ok"] for name in ("broker", "redis", "postgresql"))


def test_readyz_reports_a_failing_dependency_without_showing_its_password(
    start_api, service_env, database_url, tmp_path, broker_api
):
    topology = write_api_topology(tmp_path / "t.yaml")
    settings = api_settings(
        service_env,
        database_url,
        tmp_path,
        str(topology),
        redis_url="redis://growbin:s3cret-redis-pass@127.0.0.1:6379/15",
    )
    api = start_api(topology, broker_api=broker_api, settings=settings)

    answer = admin_readyz(api)

    assert answer.status_code == 503
    redis_check = answer.json()["checks"]["redis"]
    assert not redis_check["ok"]
    assert redis_check["target"] == "redis://growbin:****@127.0.0.1:6379/15"
    assert "s3cret" not in answer.text
    assert answer.json()["checks"]["broker"]["ok"]


def test_with_the_whole_broker_down_readyz_says_so_and_not_to_enable_the_plugin(
    start_api, service_env, database_url, tmp_path
):
    topology = write_api_topology(tmp_path / "t.yaml")
    down = free_port()
    settings = api_settings(
        service_env,
        database_url,
        tmp_path,
        str(topology),
        broker_url=f"amqp://guest:guest@127.0.0.1:{down}//",
        rabbitmq_api_url=f"http://guest:guest@127.0.0.1:{down}/api",
        # the start check would refuse (rightly): the opt-out is what a developer would use
        skip_topology_check=True,
    )
    api = start_api(topology, settings=settings)

    answer = admin_readyz(api)

    assert answer.status_code == 503
    checks = answer.json()["checks"]
    for name in ("broker", "topology"):
        detail = checks[name]["detail"]
        assert not checks[name]["ok"]
        assert f"RabbitMQ is not reachable at amqp://guest:****@127.0.0.1:{down}//" in detail
        assert "start RabbitMQ" in detail
        assert "rabbitmq_management" not in detail and "plugin" not in detail, detail


def test_readyz_tells_an_admin_that_redis_does_not_persist(
    start_api,
    service_env,
    database_url,
    tmp_path,
    broker_api,
    volatile_redis,
):
    topology = write_api_topology(tmp_path / "t.yaml")
    settings = api_settings(
        service_env, database_url, tmp_path, str(topology), redis_url=volatile_redis
    )
    api = start_api(topology, broker_api=broker_api, settings=settings)

    admin = admin_readyz(api).json()["checks"]["redis"]
    anonymous = api.client().get("/readyz").json()

    assert admin["ok"] is True  # it answers; persistence is a warning, not unreadiness
    assert "Redis does not persist (appendonly no, save '')" in admin["detail"]
    assert "appendonly yes" in admin["detail"]
    assert anonymous == {"status": "ready"}


def test_the_api_refuses_to_start_on_a_vhost_where_the_topology_was_never_applied(
    service_env, database_url, tmp_path, temp_vhost, broker_api
):
    topology = write_api_topology(tmp_path / "t.yaml")
    env = {
        **os.environ,
        **service_env,
        "GROWBIN_DATABASE_URL": database_url,
        "GROWBIN_TOPOLOGY": str(topology),
        "GROWBIN_TASK_MODULES": TASK_MODULES,
        "GROWBIN_API_SECRET": API_SECRET,
        "GROWBIN_IMAGE_DIR": str(tmp_path / "images"),
    }
    cmd = [sys.executable, "-m", "growbin.api", "serve", "--port", str(free_port())]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("the API kept serving on an unapplied vhost")

    assert proc.returncode != 0
    text = " ".join((proc.stdout + proc.stderr).split())
    assert "growbin api refuses to start" in text
    assert "+ create queue user_input" in text
    assert "run `growbin topology apply`" in text
    assert broker_api.list_queues(temp_vhost) == []


def test_the_serve_command_starts_the_api_on_the_port_it_is_given(api, tmp_path):
    port = free_port()
    log = tmp_path / "api.log"
    env = {**os.environ, **api.env, "GROWBIN_API_SECRET": "serve-command-test"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "growbin.api", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"

        def answers():
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, 60, "the API process")
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        assert httpx.get(f"{url}/v1/scans", timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
