"""What every scenario needs: a vhost of its own, worker processes, timings in Redis, reports.

Scenarios talk to this machine's RabbitMQ (AMQP 5672, management API 15672) and Redis; the scan
chain also needs PostgreSQL. Every worker is a real process started the way an operator starts
it (`growbin worker`, `celery worker`, `dramatiq`), and every figure is taken from what the
tasks themselves wrote to Redis, never from a queue looking empty.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
API_URL = os.environ.get("GROWBIN_RABBITMQ_API_URL", "http://guest:guest@127.0.0.1:15672/api")

console = Console()


@dataclass
class Vhost:
    name: str

    @property
    def broker_url(self) -> str:
        return f"{AMQP}/{self.name}"


@contextmanager
def temp_vhost(scenario: str) -> Iterator[Vhost]:
    """A fresh vhost, deleted afterwards with whatever is left in it."""
    from growbin.topology.broker_api import BrokerApi

    name = f"growbin-bench-{scenario}-{uuid.uuid4().hex[:6]}"
    with BrokerApi(API_URL) as api:
        api.put_vhost(name, description="growbin benchmark; safe to delete")
        api.put_permissions(name, "guest", configure=".*", write=".*", read=".*")
        try:
            yield Vhost(name)
        finally:
            api.delete_vhost(name, missing_ok=True)


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited early; its log:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@dataclass
class Processes:
    workdir: Path
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> Process:
        log = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": pythonpath, **env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, proc, log)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()
        self.started.clear()


@contextmanager
def processes(workdir: Path) -> Iterator[Processes]:
    group = Processes(workdir)
    try:
        yield group
    finally:
        group.stop_all()


def growbin_worker_cmd(topology: Path, profile: str, hostname: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "growbin.cli",
        "--topology",
        str(topology),
        "worker",
        "--profile",
        profile,
        "--hostname",
        hostname,
        "--loglevel",
        "WARNING",
        *extra,
    ]


def wait_for_workers(app: Any, hostnames: list[str], procs: list[Process], timeout=90.0) -> None:
    """Until every named worker answers a broadcast (it consumes its queues by then)."""
    deadline = time.monotonic() + timeout
    while True:
        for process in procs:
            process.check()
        replies = app.control.inspect(timeout=1.0, destination=hostnames).active_queues() or {}
        if set(hostnames) <= set(replies):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers {hostnames} did not come up; answered: {list(replies)}")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and all its descendants, reaped
    ones included: a share of the machine that a noisy neighbour cannot inflate."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            # after "pid (comm)": utime, stime, cutime, cstime are fields 14-17 of the line
            total += sum(int(v) for v in fields[11:15]) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, poll=0.05) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually measured."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def latency_summary(seconds: list[float], expected: int) -> dict[str, Any]:
    return {
        "count": len(seconds),
        "expected": expected,
        "p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "p90_ms": round(percentile(seconds, 90) * 1000, 1),
        "p99_ms": round(percentile(seconds, 99) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1) if seconds else None,
        "mean_ms": round(statistics.fmean(seconds) * 1000, 1) if seconds else None,
    }


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[str(c) for c in row])
    console.print(table)


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "scenario": name,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **payload,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


ADMIN_URL = os.environ.get(
    "GROWBIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def temp_database() -> Iterator[str]:
    import psycopg
    from sqlalchemy import make_url

    from growbin.db.migrate import upgrade
    from growbin.settings import load_settings

    name = f"growbin_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = (
        make_url(ADMIN_URL)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )
    try:
        upgrade(load_settings(env="test"), url=url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
