"""`growbin up`: prepares, runs the whole platform, serves a scan, and stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from sqlalchemy.orm import Session
from tests.integration.services import free_port
from tests.integration.workers import REPO

from growbin.api.keys import api_secret, create_key
from growbin.db.engine import make_engine
from growbin.deploy.profiles import profile_deploys
from growbin.scan.samples import load_manifest, sample_bytes
from growbin.settings import load_settings
from growbin.topology import loader

pytestmark = pytest.mark.integration

TOPOLOGY = "production"
API_SECRET = "growbin-up-test-secret"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def started_pids(log: str) -> dict[str, int]:
    """{child name: pid} from `up`'s 'started NAME (pid N)' lines."""
    found = {}
    for line in log.splitlines():
        if "| started " in line:
            name, _, pid = line.split("| started ", 1)[1].partition(" (pid ")
            found[name] = int(pid.rstrip(")"))
    return found


def test_growbin_up_serves_a_scan_to_done_and_sigint_stops_every_child(
    service_env, database_url, broker_api, temp_vhost, tmp_path
):
    port = free_port()
    env = {
        **os.environ,
        **service_env,
        "GROWBIN_DATABASE_URL": database_url,
        "GROWBIN_API_SECRET": API_SECRET,
        "GROWBIN_IMAGE_DIR": str(tmp_path / "images"),
        "GROWBIN_WORKER_PROGRESS_DIR": str(tmp_path / "progress"),
        "GROWBIN_METRICS_PORT": "0",
        "GROWBIN_JOURNAL_PATH": str(tmp_path / "journal" / "{hostname}.db"),
    }
    assert broker_api.queue_stats(temp_vhost, "q.ai") is None  # nothing applied yet
    log_path = tmp_path / "up.log"
    cmd = [sys.executable, "-m", "growbin.cli", "--topology", TOPOLOGY, "up", "--port", str(port)]
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    pids: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 240
        while "| ready: " not in log_path.read_text() and up.poll() is None:
            assert time.monotonic() < deadline, log_path.read_text()[-5000:]
            time.sleep(1)
        output = log_path.read_text()
        assert up.poll() is None, output[-5000:]
        # it said what it prepared, and every process of the topology runs
        assert "growbin db upgrade:" in output and "growbin topology apply: 'production'" in output
        assert broker_api.queue_stats(temp_vhost, "q.ai") is not None
        pids = started_pids(output)
        profiles = [d.name for d in profile_deploys(loader.load(TOPOLOGY))]
        assert set(pids) == {"api", "beat", *(f"worker-{p}" for p in profiles)}
        assert "worker-ai |" in output and "api |" in output  # prefixed logs

        settings = load_settings(env="test", database_url=database_url, api_secret=API_SECRET)
        engine = make_engine(settings)
        with Session(engine) as session, session.begin():
            _, key = create_key(
                session, api_secret(settings), owner=f"up-{uuid.uuid4().hex[:8]}", name="t"
            )
        engine.dispose()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
            hint = load_manifest()["can.jpg"]["hint"]
            posted = http.post(
                "/v1/scans",
                files={"image": ("can.jpg", sample_bytes("can.jpg"))},
                data={"hint": hint},
            )
            assert posted.status_code == 202, posted.text
            status_url = posted.json()["status_url"]
            deadline = time.monotonic() + 120
            while (scan := http.get(status_url).json())["status"] not in ("done", "failed"):
                assert time.monotonic() < deadline, scan
                time.sleep(0.5)
        assert scan["status"] == "done", scan

        up.send_signal(signal.SIGINT)
        longest_grace = max(d.grace_seconds for d in profile_deploys(loader.load(TOPOLOGY)))
        started = time.monotonic()
        assert up.wait(timeout=longest_grace + 30) == 0, log_path.read_text()[-5000:]
        took = time.monotonic() - started
        output = log_path.read_text()
        print(f"\n`growbin up` stopped {len(pids)} processes in {took:.1f} s")
        for name in pids:
            assert f"| {name} stopped (exit 0)" in output or f"| {name} stopped (SIGTERM)" in output
        assert "worker-ai stopped (exit 0)" in output, output[-5000:]
        assert "all stopped" in output and "killed" not in output
        # nothing left: no main process, no pool child (each child led its own group)
        for name, pid in pids.items():
            assert not group_alive(pid), f"{name} (group {pid}) still runs"
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        for pid in pids.values():
            if group_alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_growbin_up_with_no_prepare_says_so_and_a_worker_refusing_the_vhost_stops_it_all(
    service_env, database_url, tmp_path
):
    env = {
        **os.environ,
        **service_env,
        "GROWBIN_DATABASE_URL": database_url,
        "GROWBIN_WORKER_PROGRESS_DIR": str(tmp_path / "progress"),
        "GROWBIN_METRICS_PORT": "0",
    }
    cmd = [
        sys.executable, "-m", "growbin.cli", "--topology", "slo", "up", "--no-prepare",
        "--port", str(free_port()), "--profile", "fast", "--no-beat",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "--no-prepare: database and topology left as they are" in proc.stdout
    assert "growbin topology apply" in proc.stdout  # a refusal names the fix
    assert "stopping the others" in proc.stdout
    pids = started_pids(proc.stdout)
    assert set(pids) == {"api", "worker-fast"}
    assert not any(group_alive(pid) for pid in pids.values())


def test_growbin_up_refuses_an_unknown_profile(service_env):
    proc = subprocess.run(
        [sys.executable, "-m", "growbin.cli", "up", "--profile", "nope"],
        cwd=REPO,
        env={**os.environ, **service_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown worker profile(s) nope" in proc.stderr and "api, ai, batch" in proc.stderr
