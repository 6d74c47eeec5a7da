"""deploy/compose: generated from the topology, valid against the Compose Specification, every
service health-checked and started in order, no secret in the file."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tests.deploy.tools import DEPLOY, REPO, run

from growbin.deploy.compose import ONE_SHOTS, RABBITMQ_NODES, SECRETS, render_compose
from growbin.deploy.profiles import longest_task
from growbin.topology import loader

COMPOSE = DEPLOY / "compose"
GROWBIN_LONG_RUNNING = ("api", "beat", "flower")
CREDENTIALS_IN_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:[^@\s/]+@", re.IGNORECASE)
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|COOKIE|AUTH", re.IGNORECASE)


def compose_spec_schema() -> dict[str, Any]:
    # the Compose Specification's schema, as check-jsonschema vendors it (a dev dependency)
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text(encoding="utf-8"))
    return schema


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return document


def test_the_checked_in_compose_files_are_what_the_production_preset_generates():
    expected = render_compose(loader.load("production"))
    for name, text in expected.items():
        assert (COMPOSE / name).read_text() == text, (
            f"deploy/compose/{name} is stale: regenerate it with "
            "`growbin deploy render compose --out deploy/compose`"
        )


def test_the_compose_file_is_valid_against_the_compose_specification(compose):
    assert compose_spec_schema()["title"] == "Compose Specification"
    assert schema_errors(compose) == []


def test_the_schema_check_catches_a_misspelt_healthcheck_and_an_unknown_condition(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["api"]["depends_on"]["redis"]["condition"] = "service_ready"
    errors = schema_errors(broken)
    assert any("intervall" in e for e in errors), errors
    assert any("service_ready" in e for e in errors), errors


@pytest.mark.parametrize("preset", ["production", "slo", "pipeline"])
def test_every_worker_profile_gets_one_service_with_its_replicas_and_probe(preset):
    topology = loader.load(preset).topology
    document = yaml.safe_load(render_compose(loader.load(preset))["compose.yaml"])
    workers = {n: s for n, s in document["services"].items() if n.startswith("worker-")}
    assert sorted(workers) == sorted(f"worker-{p}" for p in topology.profiles)
    for name, profile in topology.profiles.items():
        service = workers[f"worker-{name}"]
        assert service["command"] == ["growbin", "worker", "--profile", name]
        assert service["deploy"]["replicas"] == profile.replicas
        assert service["healthcheck"]["test"][:6] == [
            "CMD", "growbin", "worker", "probe", "--profile", name,
        ]  # fmt: skip
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace > longest_task(topology, name), (name, grace)


def test_every_long_running_service_has_a_healthcheck_and_one_shots_run_once(compose):
    for name, service in compose["services"].items():
        if name in ONE_SHOTS:
            assert service["restart"] == "no", name
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert service["restart"] == "unless-stopped", name


def test_services_wait_for_healthy_dependencies_and_finished_one_shots(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOTS else "service_healthy"
            )
            assert how == {"condition": expected}, (name, dependency, how)
    # the cluster forms from its first node; migrations and the topology come before any use
    assert set(services["rabbitmq-1"]["depends_on"]) == {"rabbitmq-0"}
    assert set(services["db-upgrade"]["depends_on"]) == {"postgres"}
    assert set(services["topology-apply"]["depends_on"]) == set(RABBITMQ_NODES)
    growbin = [n for n in services if n.startswith("worker-")] + ["api", "beat"]
    for name in growbin:
        assert {"db-upgrade", "topology-apply", "redis", *RABBITMQ_NODES} <= set(
            services[name]["depends_on"]
        ), name
    assert "topology-apply" in services["flower"]["depends_on"]
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}


def test_the_start_order_has_no_cycle(compose):
    services = compose["services"]
    done: set[str] = set()
    remaining = set(services)
    while remaining:
        ready = {n for n in remaining if set(services[n].get("depends_on", {})) <= done}
        assert ready, f"a depends_on cycle among {sorted(remaining)}"
        done |= ready
        remaining -= ready


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{path}/{k}")]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{path}/{i}")]
    return [(path, str(node))]


def test_no_secret_is_written_in_the_compose_file(compose):
    for path, value in _strings(compose):
        assert not CREDENTIALS_IN_URL.search(value), f"{path} embeds credentials: {value}"
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), name
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} is set in the file"
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}={value}"
        for env_file in service.get("env_file", []):
            assert env_file.startswith("secrets/"), (name, env_file)
    assert {n: s["file"] for n, s in compose["secrets"].items()} == {
        n: f"./secrets/{n}" for n in SECRETS
    }


def test_the_secrets_directory_is_never_committed():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/compose/secrets/growbin.env"], cwd=REPO
    )
    assert ignored.returncode == 0, "deploy/compose/secrets/ must be git-ignored"


def test_make_secrets_makes_every_file_the_compose_file_reads(compose, tmp_path):
    (tmp_path / "make-secrets.sh").write_bytes((COMPOSE / "make-secrets.sh").read_bytes())
    first = run("bash", tmp_path / "make-secrets.sh")
    assert first.returncode == 0, first.stderr
    made = {p.name for p in (tmp_path / "secrets").iterdir()}
    env_files = {Path(f).name for s in compose["services"].values() for f in s.get("env_file", [])}
    assert set(SECRETS) | env_files <= made
    growbin_env = dict(
        line.split("=", 1) for line in (tmp_path / "secrets" / "growbin.env").read_text().split()
    )
    password = (tmp_path / "secrets" / "postgres_password").read_text()
    assert len(password) >= 24
    assert f"growbin:{password}@postgres:5432" in growbin_env["GROWBIN_DATABASE_URL"]
    assert growbin_env["GROWBIN_BROKER_URL"].count(";") == len(RABBITMQ_NODES) - 1
    before = (tmp_path / "secrets" / "erlang_cookie").read_text()
    again = run("bash", tmp_path / "make-secrets.sh")
    assert again.returncode == 0 and "made" not in again.stdout
    assert (tmp_path / "secrets" / "erlang_cookie").read_text() == before


def test_every_file_the_services_mount_exists(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE / source).resolve().exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_and_alerts_hosts_that_are_compose_services(compose):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [
        t
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for t in static["targets"]
    ] + [
        t
        for am in config["alerting"]["alertmanagers"]
        for s in am["static_configs"]
        for t in s["targets"]
    ]
    for target in targets:
        assert target.split(":")[0] in compose["services"], target


def test_every_named_volume_and_secret_a_service_uses_is_declared(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith(("/", ".")):
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
        for secret in service.get("secrets", []):
            source = secret if isinstance(secret, str) else secret["source"]
            assert source in compose["secrets"], f"{name} uses undeclared secret {source}"
