"""A prefork `growbin worker`'s /metrics, scraped over HTTP after a known set of tasks.

Each test prints what it scraped; `pytest -s` shows the report.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections import defaultdict

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

TOPOLOGY = "tests/fixtures/topologies/execution.yaml"
TASK_MODULES = "tests.integration.tasks,tests.integration.metrics.metrics_tasks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(broker_api, temp_vhost, service_env, tmp_path):
    loaded = loader.load(TOPOLOGY)
    apply(loaded.topology.model_copy(update={"vhost": temp_vhost}), broker_api)
    return {
        **service_env,
        "GROWBIN_TOPOLOGY": TOPOLOGY,
        "GROWBIN_TASK_MODULES": TASK_MODULES,
        "GROWBIN_METRICS_PORT": str(free_port()),
        "GROWBIN_METRICS_ADDR": "127.0.0.1",
        "GROWBIN_METRICS_DIR": str(tmp_path / "metrics"),
    }


@pytest.fixture
def app(env):
    settings = load_settings(
        broker_url=env["GROWBIN_BROKER_URL"],
        redis_url=env["GROWBIN_REDIS_URL"],
        topology=TOPOLOGY,
        task_modules=TASK_MODULES,
    )
    celery_app = create_app(settings, loader.load(TOPOLOGY), registrars=registrars(settings))
    yield celery_app
    celery_app.close()


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Samples by name, then by their sorted labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name][tuple(sorted(s.labels.items()))] = s.value
    return samples


def task_counts(samples, task_name: str) -> dict[str, float]:
    counts: dict[str, float] = defaultdict(float)
    for labels, value in samples.get("celery_tasks_total", {}).items():
        d = dict(labels)
        if d["task_name"] == task_name:
            counts[d["status"]] += value
    return dict(counts)


def wait_for_counts(port, expected: dict[str, dict[str, float]], timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        got = {task: task_counts(samples, task) for task in expected}
        if got == expected or time.monotonic() > deadline:
            return samples, got
        time.sleep(0.5)


def test_prefork_worker_metrics_count_succeeded_failed_retried_and_dead_lettered_tasks(
    env, app, start_worker, tmp_path
):
    port = int(env["GROWBIN_METRICS_PORT"])
    worker = start_worker("work", TOPOLOGY, "--concurrency=2", env=env)
    worker.wait_for_log("ready", timeout=60)
    key = uuid.uuid4().hex
    for n in range(5):
        app.send_task("growbin.testing.record", args=(key, n))
    for _ in range(2):
        app.send_task("growbin.testing.fatal", args=(key,))
    app.send_task("growbin.testing.fails_once", args=(key,))

    expected = {
        "growbin.testing.record": {"received": 5, "started": 5, "succeeded": 5},
        "growbin.testing.fatal": {"received": 2, "started": 2, "failed": 2, "dead_lettered": 2},
        # the retry is a new message: received and started twice
        "growbin.testing.fails_once": {"received": 2, "started": 2, "retried": 1, "succeeded": 1},
    }
    samples, got = wait_for_counts(port, expected)
    print(f"\nscraped celery_tasks_total by task: {got}")
    assert got == expected, worker.output()[-3000:]

    workers = {dict(labels)["worker"] for labels in samples["celery_tasks_total"]}
    assert workers == {worker_hostname(worker)}
    durations = {
        dict(labels)["task_name"]: value
        for labels, value in samples["celery_task_duration_seconds_count"].items()
        if dict(labels)["queue"] == "q.work"
    }
    # every execution is timed: 5 successes, 2 failures, 1 retried attempt plus its success
    assert durations == {
        "growbin.testing.record": 5,
        "growbin.testing.fatal": 2,
        "growbin.testing.fails_once": 2,
    }
    buckets = samples["celery_task_duration_seconds_bucket"]
    assert {dict(labels)["le"] for labels in buckets} >= {"0.1", "10.0", "300.0", "+Inf"}
    # the counts are the sum of several processes: the main one (received) and pool children
    files = sorted(p.name for p in (tmp_path / "metrics").rglob("counter_*.db"))
    print(f"per-process files: {files}")
    assert len(files) >= 2


def worker_hostname(worker) -> str:
    for line in worker.output().splitlines():
        if "@" in line and "ready" in line:
            return line.split("ready")[0].split()[-1].rstrip(":")
    raise AssertionError(f"no ready line with a hostname:\n{worker.output()[-2000:]}")


def test_a_worker_whose_metrics_port_is_taken_still_runs_its_tasks(env, app, start_worker):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = start_worker(
            "work", TOPOLOGY, "--concurrency=2", env={**env, "GROWBIN_METRICS_PORT": str(port)}
        )
        worker.wait_for_log("ready", timeout=60)
        key = uuid.uuid4().hex
        app.send_task("growbin.testing.record", args=(key, 1))
        client = redis.Redis.from_url(env["GROWBIN_REDIS_URL"])
        deadline = time.monotonic() + 30
        while not client.hget(f"execs:{key}", "1") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.hget(f"execs:{key}", "1") == b"1"
        assert "cannot listen on 127.0.0.1" in worker.output()
