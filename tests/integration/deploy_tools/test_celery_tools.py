"""Celery's own tools on a growbin deployment, and the worker probe, against real services.

`celery -A growbin inspect|status|worker|flower` load the app from GROWBIN_*; `growbin worker
probe` reads the worker's progress file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from tests.integration.services import free_port, port_open
from tests.integration.workers import REPO, WorkerProcess

from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

TOPOLOGY = "tests/fixtures/topologies/execution.yaml"
TASK_MODULES = "tests.integration.tasks"


def wait_until(check, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


@pytest.fixture
def env(service_env, tmp_path) -> dict[str, str]:
    return {
        **service_env,
        "GROWBIN_TOPOLOGY": TOPOLOGY,
        "GROWBIN_TASK_MODULES": TASK_MODULES,
        "GROWBIN_METRICS_PORT": "0",
        "GROWBIN_WORKER_PROGRESS_DIR": str(tmp_path / "progress"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


@pytest.fixture
def applied(broker_api, temp_vhost) -> None:
    apply(loader.load(TOPOLOGY).topology.model_copy(update={"vhost": temp_vhost}), broker_api)


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


def run(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def celery(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(env, sys.executable, "-m", "celery", "-A", "growbin", *args)


def probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(env, sys.executable, "-m", "growbin.cli", "worker", "probe", *args)


@pytest.fixture
def processes():
    started: list[WorkerProcess] = []

    def start(cmd: list[str], env: dict[str, str], log: Path) -> WorkerProcess:
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env={**os.environ, **env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(WorkerProcess(proc=proc, log=log))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def test_celery_inspect_ping_and_status_answer_a_running_growbin_worker(env, applied, start_worker):
    worker = start_worker("work", TOPOLOGY, "--concurrency=2", env=env)
    worker.wait_for_log("ready", timeout=90)
    ping = celery(env, "inspect", "ping", "--timeout", "10")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "work@" in ping.stdout and "pong" in ping.stdout
    status = celery(env, "status", "--timeout", "10")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "work@" in status.stdout and "1 node online" in status.stdout


def test_celery_worker_with_a_profile_is_the_growbin_worker_of_that_profile(
    env, applied, app, processes, tmp_path
):
    cmd = [sys.executable, "-m", "celery", "-A", "growbin", "worker", "--profile", "work"]
    worker = processes(cmd, env, tmp_path / "celery-worker.log")
    worker.wait_for_log("ready", timeout=90)
    assert "work@" in worker.output()
    assert app.send_task("growbin.testing.nap", args=("k", 1, 0.1)).get(timeout=60) == 1

    inspect = app.control.inspect(timeout=10)
    (hostname, queues), *_ = inspect.active_queues().items()
    stats = inspect.stats()[hostname]
    assert hostname.startswith("work@")  # the profile's hostname, not celery@
    assert [q["name"] for q in queues] == ["q.work"]
    assert stats["pool"]["max-concurrency"] == 4  # the profile's, not one per CPU
    assert stats["prefetch_count"] == 4  # concurrency x prefetch_multiplier 1
    # its progress file is there, with the consumer's state: the probe says ready
    assert wait_until(lambda: probe(env, "--profile", "work").returncode == 0, timeout=30)


def test_celery_worker_refuses_a_vhost_without_the_topology(env):
    proc = celery(env, "worker", "--profile", "work")
    assert proc.returncode != 0
    assert "topology" in proc.stderr and "growbin topology apply" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ready" not in proc.stdout


def test_the_probe_passes_for_a_running_worker_and_fails_once_it_is_stalled(
    env, applied, app, start_worker
):
    assert probe(env, "--profile", "work").returncode == 1  # nothing started yet: no file
    worker = start_worker(
        "work", TOPOLOGY, "--concurrency=2", env={**env, "GROWBIN_WORKER_STALL_AFTER": "3"}
    )
    worker.wait_for_log("ready", timeout=90)
    assert wait_until(lambda: probe(env, "--profile", "work").returncode == 0, timeout=30)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        ok = probe(env, "--profile", "work")
        timings.append(time.perf_counter() - started)
        assert ok.returncode == 0 and ok.stdout.startswith("ready: work@"), ok.stderr
        assert "consuming q.work" in ok.stdout
    print(f"\nprobe of a running worker, whole process: {[f'{t * 1000:.0f} ms' for t in timings]}")
    assert min(timings) < 1.0

    # two slots, both held by naps that outlast the stall threshold: no progress
    for n in range(2):
        app.send_task("growbin.testing.nap", args=(uuid.uuid4().hex, n, 25.0), ignore_result=True)
    assert wait_until(lambda: probe(env, "--profile", "work").returncode == 1, timeout=40)
    stalled = probe(env, "--profile", "work")
    assert "stalled: holds 2 message(s)" in stalled.stderr, stalled.stderr


def test_the_probe_fails_for_a_killed_worker_whose_file_stayed(env, applied, start_worker):
    worker = start_worker("work", TOPOLOGY, "--concurrency=1", "--pool=solo", env=env)
    worker.wait_for_log("ready", timeout=90)
    assert wait_until(lambda: probe(env, "--profile", "work").returncode == 0, timeout=30)
    worker.kill(signal.SIGKILL)
    worker.wait_exit(timeout=30)
    files = list(Path(env["GROWBIN_WORKER_PROGRESS_DIR"]).glob("work@*.json"))
    assert files  # a killed worker cannot remove its file
    dead = probe(env, "--profile", "work")
    assert dead.returncode == 1 and "no longer exists" in dead.stderr, dead.stderr
    # and once the record is old, whatever holds the pid now
    stale = probe(env, "--profile", "work", "--max-age", "0")
    assert stale.returncode == 1 and "stopped reporting" in stale.stderr


def test_flower_lists_the_growbin_workers_and_their_tasks(
    env, applied, app, start_worker, tmp_path, processes
):
    worker = start_worker("work", TOPOLOGY, "--concurrency=2", env=env)
    worker.wait_for_log("ready", timeout=90)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "growbin",
        "flower",
        "--address=127.0.0.1",
        f"--port={port}",
        "--basic-auth=ops:flower-test-secret",
    ]
    flower = processes(cmd, env, tmp_path / "flower.log")
    assert wait_until(lambda: port_open(port), timeout=60), flower.output()[-3000:]
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10, auth=("ops", "flower-test-secret")) as http:
        assert httpx.get(f"{base}/api/workers", timeout=10).status_code == 401  # auth is on

        def workers() -> dict:
            response = http.get("/api/workers", params={"refresh": "1"})
            return response.json() if response.status_code == 200 else {}

        assert wait_until(lambda: any(w.startswith("work@") for w in workers()), timeout=60)

        # Flower turns task events on (the worker's default is off); a task sent then is listed
        ids: list[str] = []

        def listed() -> bool:
            ids.append(app.send_task("growbin.testing.nap", args=("f", len(ids), 0.1)).id)
            tasks = http.get("/api/tasks").json()
            return any(tasks.get(i, {}).get("state") == "SUCCESS" for i in ids)

        assert wait_until(listed, timeout=60, interval=2.0), flower.output()[-3000:]
        tasks = http.get("/api/tasks").json()
        done = [t for i, t in tasks.items() if i in ids and t.get("state") == "SUCCESS"]
        assert done and done[0]["name"] == "growbin.testing.nap"
        assert done[0]["worker"].startswith("work@")
