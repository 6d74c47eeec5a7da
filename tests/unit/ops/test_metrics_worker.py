"""Worker metrics: multiprocess sums, dead processes' gauges, the HTTP server and its config.

Multiprocess mode changes prometheus_client for the whole process, so those tests run in a
child Python.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from growbin.ops.metrics_config import DEFAULT_PORT, MetricsConfig
from growbin.ops.metrics_worker import (
    WorkerMetrics,
    prune_dead_processes,
    start_metrics_server,
)
from growbin.settings import Settings

FORKED_COUNTS = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from growbin.ops import metrics as m
    from growbin.ops.metrics_worker import enable_multiprocess, multiprocess_registry

    directory = Path(sys.argv[1])
    directory.mkdir(parents=True)
    (directory / "counter_1.db").write_bytes(b"left by a previous run")
    enable_multiprocess(directory)
    m.metrics().tasks.labels("w@h", "t", "received").inc()  # the main process
    children = []
    for n in range(2):
        pid = os.fork()
        if pid == 0:
            m.metrics().tasks.labels("w@h", "t", "succeeded").inc(n + 1)
            m.set_breaker_state("openai", n)  # livemax: the worst live process wins
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    registry = multiprocess_registry(directory)
    out = {
        "received": registry.get_sample_value(
            "celery_tasks_total", {"worker": "w@h", "task_name": "t", "status": "received"}),
        "succeeded": registry.get_sample_value(
            "celery_tasks_total", {"worker": "w@h", "task_name": "t", "status": "succeeded"}),
        "breaker": registry.get_sample_value("growbin_breaker_state", {"provider": "openai"}),
        "files": sorted(p.name for p in directory.iterdir()),
        "env": os.environ["PROMETHEUS_MULTIPROC_DIR"],
    }
    print(json.dumps(out))
    """
)


def test_counts_from_forked_pool_processes_add_up_and_a_dead_ones_live_gauges_go(tmp_path):
    directory = tmp_path / "metrics" / "work-1"
    result = subprocess.run(
        [sys.executable, "-c", FORKED_COUNTS, str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["received"] == 1
    assert out["succeeded"] == 3  # 1 + 2 from two children
    # both children exited, so their live gauges were dropped at scrape time
    assert out["breaker"] is None
    assert "counter_1.db" not in out["files"]  # the previous run's file was cleared
    assert not any(f.startswith("gauge_livemax") for f in out["files"])
    assert out["env"] == str(directory)


def test_only_live_gauge_files_of_dead_processes_are_pruned(tmp_path):
    dead_pid = 2**22 + 12345  # above the default pid_max: never a running process
    for name in (
        f"gauge_livemax_{dead_pid}.db",
        f"gauge_livemostrecent_{dead_pid}.db",
        f"counter_{dead_pid}.db",
        f"gauge_livemax_{os.getpid()}.db",
    ):
        (tmp_path / name).write_bytes(b"")
    assert prune_dead_processes(tmp_path) == [dead_pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"counter_{dead_pid}.db",
        f"gauge_livemax_{os.getpid()}.db",
    ]


def test_the_server_serves_a_registry_over_http_on_the_port_it_got():
    registry = CollectorRegistry()
    Counter("growbin_probe", "probe", registry=registry).inc(3)
    server = start_metrics_server(0, addr="127.0.0.1", registry=registry)
    try:
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).text
    finally:
        server.close()
    assert "growbin_probe_total 3.0" in text


def test_a_taken_port_is_an_os_error_for_the_caller_to_report():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            start_metrics_server(
                taken.getsockname()[1], addr="127.0.0.1", registry=CollectorRegistry()
            )


def test_the_worker_logs_a_taken_port_and_carries_on(tmp_path, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = object()
        config = MetricsConfig(port=taken.getsockname()[1], addr="127.0.0.1")
        lifecycle = WorkerMetrics(app, config, tmp_path)  # type: ignore[arg-type]
        lifecycle._on_worker_init(sender=SimpleNamespace(app=app, hostname="ai@node-1"))
    assert lifecycle.server is None
    assert "GROWBIN_METRICS_PORT" in caplog.text


def test_the_worker_serves_its_directory_and_removes_it_at_shutdown(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    app = object()
    (tmp_path / "d").mkdir()
    config = MetricsConfig(port=free, addr="127.0.0.1")
    lifecycle = WorkerMetrics(app, config, tmp_path / "d")  # type: ignore[arg-type]
    lifecycle._on_worker_init(sender=SimpleNamespace(app=app, hostname="ai@node-1"))
    assert lifecycle.server is not None
    assert httpx.get(f"http://127.0.0.1:{free}/metrics", timeout=5).status_code == 200
    lifecycle._on_worker_shutdown()
    assert lifecycle.server is None and not (tmp_path / "d").exists()


def test_a_worker_of_another_app_or_port_0_starts_no_server(tmp_path):
    app = object()
    off = WorkerMetrics(app, MetricsConfig(port=0), tmp_path)  # type: ignore[arg-type]
    off._on_worker_init(sender=SimpleNamespace(app=app, hostname="ai@node-1"))
    other = WorkerMetrics(app, MetricsConfig(port=1), tmp_path)  # type: ignore[arg-type]
    other._on_worker_init(sender=SimpleNamespace(app=object(), hostname="ai@node-1"))
    assert off.server is None and other.server is None


def test_config_comes_from_the_environment_with_port_9090_by_default(monkeypatch):
    monkeypatch.delenv("GROWBIN_METRICS_PORT", raising=False)
    assert MetricsConfig.resolve(Settings()).port == DEFAULT_PORT == 9090
    monkeypatch.setenv("GROWBIN_METRICS_PORT", "9191")
    monkeypatch.setenv("GROWBIN_METRICS_DIR", "/var/run/growbin")
    config = MetricsConfig.resolve(Settings())
    assert config.port == 9191
    assert str(config.directory("ai", 42)) == "/var/run/growbin/ai-42"


def test_settings_that_carry_a_metrics_config_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("GROWBIN_METRICS_PORT", "9191")
    carried = SimpleNamespace(metrics=MetricsConfig(port=9300))
    assert MetricsConfig.resolve(carried).port == 9300
