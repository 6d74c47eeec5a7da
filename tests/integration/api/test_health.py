"""/healthz and /readyz: no key, per-dependency detail, 503 when one fails, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from tests.integration.api.conftest import api_settings, wait_until, write_api_topology
from tests.integration.api.rabbit_node import free_port

pytestmark = pytest.mark.integration

CHECKS = {"broker", "redis", "postgresql", "topology"}


def test_healthz_answers_without_a_key(api):
    answer = api.client().get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_readyz_is_ready_when_every_dependency_answers_and_the_topology_is_applied(api):
    answer = api.client().get("/readyz")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert check["ok"] is True, (name, check)
        assert 0 <= check["seconds"] < 10
    assert ":guest@" not in answer.text  # the broker URL's password is masked


def test_readyz_is_503_and_names_the_topology_when_it_was_never_applied(start_api, tmp_path):
    api = start_api(write_api_topology(tmp_path / "t.yaml"))  # nothing applied to the vhost

    answer = api.client().get("/readyz")

    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert not checks["topology"]["ok"]
    assert "growbin topology apply" in checks["topology"]["detail"]
    assert "queues: user_input" in checks["topology"]["detail"]
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

    answer = api.client().get("/readyz")

    assert answer.status_code == 503
    redis_check = answer.json()["checks"]["redis"]
    assert not redis_check["ok"]
    assert redis_check["target"] == "redis://growbin:****@127.0.0.1:6379/15"
    assert "s3cret" not in answer.text
    assert answer.json()["checks"]["broker"]["ok"]


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
