"""What the worker journal costs: throughput of one worker with and without it, same run.

    .venv/bin/python bench/journal.py [--tasks 2000] [--rounds 2]

Needs the RabbitMQ (with the management API) and Redis of this machine; makes its own vhost
and removes it. Each variant runs ``--rounds`` times, interleaved, on a fresh `growbin worker`
(profile: prefork, concurrency 2, prefetch 4), warmed up with 20 tasks before it is
measured. The task is nearly a no-op (one pipelined Redis round trip): the worst case for any
per-task overhead.

Two measures: throughput (tasks / wall time from the first task's start to the last one's
end) and the CPU the worker's processes spent per task (/proc, main process and pool). On a
shared 2-core machine the throughput moves with whatever else runs; CPU per task much less.
Prints a table and writes bench/results/journal.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from celery import Celery

from growbin.runtime.celery_app import create_app
from growbin.settings import DEFAULT_RABBITMQ_API_URL, load_settings
from growbin.topology import loader
from growbin.topology.broker_api import BrokerApi
from growbin.topology.plan import apply

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "journal.json"
REDIS_URL = os.environ.get("GROWBIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

TOPOLOGY = """
version: 1
name: journal-bench
exchanges:
  tasks: {type: topic}
queues:
  q.bench:
    type: classic
    bindings: [{exchange: tasks, routing_key: "bench.#"}]
    max_length: 100000
    overflow: reject-publish
routes:
  growbin.bench.*: {exchange: tasks, routing_key: bench.count}
profiles:
  bench: {queues: [q.bench], pool: prefork, concurrency: 2, prefetch_multiplier: 4}
"""

VARIANTS = {
    "no journal": {"GROWBIN_JOURNAL_ENABLED": "false"},
    "journal (default: NORMAL, commit before ack)": {},
    "journal, no wait for commit": {"GROWBIN_JOURNAL_COMMIT_BEFORE_ACK": "false"},
    "journal, synchronous=FULL": {"GROWBIN_JOURNAL_SYNCHRONOUS": "FULL"},
}


def register(app: Celery) -> None:
    """The benchmark's task (GROWBIN_TASK_MODULES=bench.journal)."""
    clients: dict[int, redis.Redis] = {}

    @app.task(name="growbin.bench.count", shared=False)  # type: ignore[untyped-decorator]
    def count(key: str) -> None:
        client = clients.get(os.getpid()) or clients.setdefault(
            os.getpid(), redis.Redis.from_url(REDIS_URL)
        )
        now = time.time()
        pipe = client.pipeline(transaction=False)
        pipe.set(f"bench:first:{key}", now, nx=True)
        pipe.incr(f"bench:count:{key}")
        pipe.set(f"bench:last:{key}", now)
        pipe.execute()


def tree_cpu(pgid: int) -> float:
    """CPU seconds used so far by every process of a process group (a worker and its pool)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def publish(app: Celery, key: str, n: int) -> None:
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task("growbin.bench.count", args=(key,), producer=producer)


def wait_count(r: redis.Redis, key: str, n: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while int(r.get(f"bench:count:{key}") or 0) < n:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"the worker did not finish; its log:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def completed_rows(journal: Path) -> int:
    if not journal.exists():
        return 0
    conn = sqlite3.connect(journal, timeout=10)
    try:
        return int(
            conn.execute("SELECT COUNT(*) FROM task_wal WHERE status = 'completed'").fetchone()[0]
        )
    finally:
        conn.close()


def run_once(env: dict[str, str], topology: Path, tasks: int, workdir: Path) -> dict[str, float]:
    settings = load_settings(
        broker_url=env["GROWBIN_BROKER_URL"], topology=str(topology), task_modules="bench.journal"
    )
    app = create_app(settings, loader.load(str(topology)), registrars=(register,))
    key, warmup = uuid.uuid4().hex, uuid.uuid4().hex
    journal = workdir / f"{key}.db"
    log = workdir / f"{key}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "growbin.cli",
                "--topology",
                str(topology),
                "worker",
                "--profile",
                "bench",
                "--hostname",
                f"bench@{key[:8]}",
                "--loglevel",
                "WARNING",
            ],
            cwd=REPO,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                **env,
                "GROWBIN_JOURNAL_PATH": str(journal),
            },
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    r = redis.Redis.from_url(REDIS_URL)
    try:
        publish(app, warmup, 20)  # the worker is up, its pool warm, its journal open
        wait_count(r, warmup, 20, proc, log)
        cpu_before = tree_cpu(proc.pid)
        publish(app, key, tasks)
        wait_count(r, key, tasks, proc, log)
        cpu = tree_cpu(proc.pid) - cpu_before
        if env.get("GROWBIN_JOURNAL_ENABLED") != "false":
            # the task counts itself before its end is journalled: let the last ones land
            deadline = time.monotonic() + 10
            while completed_rows(journal) < tasks + 20 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        app.close()
        os.kill(proc.pid, signal.SIGTERM)  # a warm shutdown of the main process
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    first, last = float(r.get(f"bench:first:{key}") or 0), float(r.get(f"bench:last:{key}") or 0)
    for k in (key, warmup):
        r.delete(f"bench:first:{k}", f"bench:count:{k}", f"bench:last:{k}")
    r.close()
    rows = completed_rows(journal)
    return {
        "seconds": last - first,
        "rate": tasks / (last - first),
        "cpu_ms_per_task": cpu / tasks * 1000,
        "journal_rows": rows - 20 if rows else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    api = BrokerApi(os.environ.get("GROWBIN_RABBITMQ_API_URL", DEFAULT_RABBITMQ_API_URL))
    vhost = f"growbin-bench-{uuid.uuid4().hex[:8]}"
    api.put_vhost(vhost, description="growbin journal benchmark; safe to delete")
    api.put_permissions(vhost, "guest", configure=".*", write=".*", read=".*")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    try:
        with tempfile.TemporaryDirectory(prefix="growbin-bench-") as tmp:
            workdir = Path(tmp)
            topology = workdir / "topology.yaml"
            topology.write_text(TOPOLOGY)
            apply(loader.load(str(topology)).topology.model_copy(update={"vhost": vhost}), api)
            env = {
                "GROWBIN_ENV": "test",
                "GROWBIN_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
                "GROWBIN_REDIS_URL": REDIS_URL,
                "GROWBIN_TASK_MODULES": "bench.journal",
                "GROWBIN_JOURNAL_SYNC_INTERVAL": "0",  # no PostgreSQL: measure the writes
            }
            for round_ in range(args.rounds):
                for name, extra in VARIANTS.items():
                    result = run_once({**env, **extra}, topology, args.tasks, workdir)
                    runs[name].append(result)
                    print(f"round {round_ + 1} {name}: {result['rate']:.0f} tasks/s", flush=True)
    finally:
        api.delete_vhost(vhost, missing_ok=True)
        api.close()

    report(runs, args.tasks, args.rounds)


def report(runs: dict[str, list[dict[str, float]]], tasks: int, rounds: int) -> None:
    base_rate = statistics.median(r["rate"] for r in runs["no journal"])
    base_cpu = statistics.median(r["cpu_ms_per_task"] for r in runs["no journal"])
    summary = []
    print(f"\n{tasks} tasks x {rounds} rounds, one worker (prefork, concurrency 2)")
    print(
        f"{'variant':46} {'tasks/s':>8} {'ratio':>6} {'runs':>16} "
        f"{'cpu ms/task':>12} {'ratio':>6} {'rows':>6}"
    )
    for name, results in runs.items():
        rate = statistics.median(r["rate"] for r in results)
        cpu = statistics.median(r["cpu_ms_per_task"] for r in results)
        rows = min(int(r["journal_rows"]) for r in results)
        each = "/".join(f"{r['rate']:.0f}" for r in results)
        print(
            f"{name:46} {rate:8.0f} {rate / base_rate:6.2f} {each:>16} "
            f"{cpu:12.3f} {cpu / base_cpu:6.2f} {rows:6d}"
        )
        summary.append(
            {
                "variant": name,
                "env": VARIANTS[name],
                "median_rate": round(rate, 1),
                "rates": [round(r["rate"], 1) for r in results],
                "throughput_ratio": round(rate / base_rate, 3),
                "median_cpu_ms_per_task": round(cpu, 3),
                "cpu_ms_per_task": [round(r["cpu_ms_per_task"], 3) for r in results],
                "cpu_ratio": round(cpu / base_cpu, 3),
                "journal_rows": rows,
            }
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "journal",
                "tasks": tasks,
                "rounds": rounds,
                "worker": "prefork, concurrency 2, prefetch 4",
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                # other work on the machine moves the throughput; CPU per task much less
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "results": summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten: {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
