"""(a) Isolation: the fast lane's latency while bulk and external work floods the broker.

Load: 60 bulk tasks (2 s each) and 60 external tasks that hang 5 s are queued, then fast tasks
are published at 10 per second for 20 s; a fast task's latency runs from just before its
publication to the end of its run (the task writes it to Redis). The same fast lane is measured
idle first, so the loaded p99 can be compared with the idle one.

Two setups on the same RabbitMQ, same run:

- growbin, the ``slo`` preset (seed 002): q.fast, q.bulk and q.external, each with its own
  worker profile (fast: prefork 2; bulk: threads 4; external: threads 8);
- plain Celery: one queue and one prefork worker with the same total concurrency (14) and
  Celery's defaults (prefetch 4, early acks).

The slow tasks sleep: bulk jobs and hung API calls wait on I/O. CPU-bound bulk work on a
2-core machine would slow any lane that shares the cores, queues or no queues.
"""

from __future__ import annotations

import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from bench import common

FAST, BULK, EXTERNAL = 2, 4, 8
ROUTES = {
    "growbin.bench.fast": {"exchange": "tasks", "routing_key": "bench.high.fast"},
    "growbin.bench.bulk": {"exchange": "tasks", "routing_key": "bench.low.bulk"},
    "growbin.bench.external": {"exchange": "tasks", "routing_key": "external.bench.hang"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_topology(vhost: str, path: Path) -> Path:
    from growbin.topology import loader
    from growbin.topology.model import Route

    slo = loader.load("slo").topology
    routes = {**slo.routes, **{name: Route(**spec) for name, spec in ROUTES.items()}}
    path.write_text(loader.dump(slo.model_copy(update={"routes": routes, "vhost": vhost})))
    return path


class Lane:
    """Publishes and measures through either setup."""

    def __init__(self, send: Any, names: dict[str, str]) -> None:
        self.send = send
        self.names = names
        self.r = redis.Redis.from_url(common.REDIS_URL)

    def fast(self, rate: float, seconds: float) -> list[float]:
        key = uuid.uuid4().hex[:10]
        count = int(rate * seconds)
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.send(self.names["fast"], (key, time.time()))
        common.wait_until(
            lambda: self.r.llen(f"bench:{key}:latency") >= count,
            timeout=240,
            what=f"{count} fast tasks",
            poll=0.1,
        )
        values = [float(v) for v in self.r.lrange(f"bench:{key}:latency", 0, -1)]
        self.r.delete(f"bench:{key}:latency")
        return values

    def flood(self, bulk: int, external: int) -> None:
        key = uuid.uuid4().hex[:10]
        for _ in range(bulk):
            self.send(self.names["bulk"], (key, 2.0))
        for _ in range(external):
            self.send(self.names["external"], (key, 5.0))


def _measure(lane: Lane, seconds: float, bulk: int, external: int) -> dict[str, Any]:
    lane.fast(rate=10, seconds=1)  # warm up: connections, imports, pool processes
    idle = lane.fast(rate=10, seconds=seconds)
    lane.flood(bulk, external)
    loaded = lane.fast(rate=10, seconds=seconds)
    return {
        "idle": common.latency_summary(idle, int(10 * seconds)),
        "loaded": common.latency_summary(loaded, int(10 * seconds)),
    }


def run_growbin(vhost: common.Vhost, workdir: Path, seconds: float, flood: int) -> dict[str, Any]:
    from growbin.runtime.celery_app import create_app
    from growbin.settings import load_settings
    from growbin.topology import loader
    from growbin.topology.broker_api import BrokerApi
    from growbin.topology.plan import apply

    topology = bench_topology(vhost.name, workdir / "isolation.yaml")
    with BrokerApi(common.API_URL) as api:
        apply(loader.load(str(topology)).topology, api)
    env = {
        "GROWBIN_ENV": "test",
        "GROWBIN_BROKER_URL": vhost.broker_url,
        "GROWBIN_REDIS_URL": common.REDIS_URL,
        "GROWBIN_TASK_MODULES": "bench.tasks",
        "GROWBIN_JOURNAL_PATH": str(workdir / "journal-{hostname}.db"),
        "GROWBIN_JOURNAL_SYNC_INTERVAL": "0",
        "GROWBIN_METRICS_DIR": str(workdir / "metrics"),
        "GROWBIN_METRICS_ADDR": "127.0.0.1",
    }
    settings = load_settings(env="test", broker_url=vhost.broker_url, topology=str(topology))
    app = create_app(settings, loader.load(str(topology)), registrars=())
    tag = uuid.uuid4().hex[:6]
    workers = {"fast": FAST, "bulk": BULK, "external": EXTERNAL}
    with common.processes(workdir) as group:
        started = [
            group.start(
                profile,
                common.growbin_worker_cmd(
                    topology, profile, f"{profile}@{tag}", f"--concurrency={concurrency}"
                ),
                {**env, "GROWBIN_METRICS_PORT": str(_free_port())},
            )
            for profile, concurrency in workers.items()
        ]
        common.wait_for_workers(app, [f"{p}@{tag}" for p in workers], started)
        lane = Lane(
            lambda name, args: app.send_task(name, args=args),
            {k: f"growbin.bench.{k}" for k in ("fast", "bulk", "external")},
        )
        result = _measure(lane, seconds, flood, flood)
    app.close()
    return result


def run_plain(vhost: common.Vhost, workdir: Path, seconds: float, flood: int) -> dict[str, Any]:
    from celery import Celery

    # a publisher of its own for this vhost; the worker runs bench.plain_app
    app = Celery("bench-publisher", broker=vhost.broker_url, set_as_current=False)
    queue = "bench.plain.iso"
    total = FAST + BULK + EXTERNAL
    cmd = [sys.executable, "-m", "celery", "-A", "bench.plain_app", "worker", "-P", "prefork"]
    cmd += ["-c", str(total), "-Q", queue, "-n", f"plain@{uuid.uuid4().hex[:6]}"]
    cmd += ["--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
    with common.processes(workdir) as group:
        worker = group.start(
            "plain", cmd, {"BENCH_BROKER_URL": vhost.broker_url, "BENCH_QUEUE": queue}
        )
        common.wait_for_workers(app, [cmd[cmd.index("-n") + 1]], [worker])
        lane = Lane(
            lambda name, args: app.send_task(name, args=args, queue=queue),
            {k: f"bench.{k}" for k in ("fast", "bulk", "external")},
        )
        result = _measure(lane, seconds, flood, flood)
    app.close()
    return result


def run(quick: bool, workdir: Path) -> dict[str, Any]:
    seconds, flood = (5.0, 60) if quick else (20.0, 60)
    with common.temp_vhost("isolation") as vhost:
        growbin = run_growbin(vhost, workdir, seconds, flood)
        plain = run_plain(vhost, workdir, seconds, flood)
    rows = []
    for name, result in (
        ("growbin slo (3 queues, 3 profiles)", growbin),
        ("plain Celery (1 queue)", plain),
    ):
        for phase in ("idle", "loaded"):
            s = result[phase]
            rows.append(
                [
                    f"{name}: {phase}",
                    f"{s['count']}/{s['expected']}",
                    s["p50_ms"],
                    s["p99_ms"],
                    s["max_ms"],
                ]
            )
    common.print_table(
        f"(a) isolation: fast lane at 10/s for {seconds:.0f} s; loaded = "
        f"{flood} bulk (2 s) + {flood} external (5 s) queued first",
        ["setup: phase", "done", "p50 ms", "p99 ms", "max ms"],
        rows,
    )
    idle99, loaded99 = growbin["idle"]["p99_ms"], growbin["loaded"]["p99_ms"]
    targets = {
        "fast_lane_p99_under_1s": loaded99 < 1000,
        "loaded_p99_within_2x_idle_p99": loaded99 <= 2 * idle99,
        "loaded_over_idle_p99": round(loaded99 / idle99, 2),
        "plain_over_growbin_loaded_p99": round(plain["loaded"]["p99_ms"] / loaded99, 1),
    }
    common.console.print(f"targets: {targets}", highlight=False)
    return {
        "fast_rate_per_s": 10,
        "seconds": seconds,
        "bulk_tasks": flood,
        "external_tasks": flood,
        "concurrency": {
            "fast": FAST,
            "bulk": BULK,
            "external": EXTERNAL,
            "plain": FAST + BULK + EXTERNAL,
        },
        "growbin": growbin,
        "plain_celery": plain,
        "targets": targets,
    }
