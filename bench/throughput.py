"""(b) Throughput: no-op tasks through one growbin profile with every platform feature on,
against bare Celery with the same pool, prefetch and acks, and Dramatiq, on the same RabbitMQ.

Method: the tasks are queued first, then one worker starts; each task writes its start and end
to Redis and counts itself, so the rate is tasks / (last end - first start) over tasks that
really completed, and neither the worker's start nor the publishing is in it. Variants run in
interleaved rounds, and each ratio is the median of per-round ratios, so a noisy neighbour on
this shared machine weighs on both sides of a ratio.

Then, with the worker warm, as many tasks again are sent and the CPU seconds the worker's
processes spent on them are read from /proc: CPU per task, which a busy neighbour inflates far
less than it slows the wall clock.

Two extra variants tell the platform's own cost from two features' costs: Celery's Redis
result backend as a growbin app configures it (a STARTED state, then the result, each a read
and a write), and the worker journal (SQLite, committed before the ack).
"""

from __future__ import annotations

import socket
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

import redis
from bench import common

TOPOLOGY = """
version: 1
name: throughput-bench
exchanges:
  tasks: {type: topic, alternate_exchange: unroutable}
  dlx: {type: direct}
  unroutable: {type: fanout}
queues:
  q.bench:
    type: classic
    bindings: [{exchange: tasks, routing_key: "bench.#"}]
    message_ttl: 3600
    max_length: 200000
    overflow: reject-publish
    dead_letter_exchange: dlx
    dead_letter_routing_key: dlq
  q.dlq:
    role: dead-letter
    bindings: [{exchange: dlx, routing_key: dlq}]
    max_length: 10000
    overflow: drop-head
  q.unroutable:
    role: unroutable
    bindings: [{exchange: unroutable}]
    max_length: 10000
routes:
  growbin.bench.*: {exchange: tasks, routing_key: bench.task}
profiles:
  bench: {queues: [q.bench], pool: prefork, concurrency: 2, prefetch_multiplier: 4}
"""
POOL = "prefork, concurrency 2, prefetch 4, acks_late"
BARE = "bare Celery"
BARE_RESULTS = "bare Celery + Redis results (as growbin)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def variants(workdir: Path, topology: Path, broker_url: str) -> dict[str, dict[str, Any]]:
    growbin_env = {
        "GROWBIN_ENV": "test",
        "GROWBIN_BROKER_URL": broker_url,
        "GROWBIN_REDIS_URL": common.REDIS_URL,
        "GROWBIN_TASK_MODULES": "bench.tasks",
        "GROWBIN_JOURNAL_PATH": str(workdir / "journal-{hostname}.db"),
        "GROWBIN_JOURNAL_SYNC_INTERVAL": "0",  # no PostgreSQL here: the local journal only
        "GROWBIN_METRICS_DIR": str(workdir / "metrics"),
        "GROWBIN_METRICS_ADDR": "127.0.0.1",
    }
    celery = [sys.executable, "-m", "celery", "-A", "bench.plain_app", "worker", "-P", "prefork"]
    celery += ["-c", "2", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
    bare_env = {
        "BENCH_BROKER_URL": broker_url,
        "BENCH_QUEUE": "bench.plain",
        "BENCH_ACKS_LATE": "1",
        "BENCH_PREFETCH": "4",
    }
    return {
        "growbin (all features)": {"kind": "growbin", "env": growbin_env},
        "growbin, journal off": {
            "kind": "growbin",
            "env": {**growbin_env, "GROWBIN_JOURNAL_ENABLED": "false"},
        },
        # the platform without its two costliest features, to tell their cost from the rest
        "growbin, journal off, results off": {
            "kind": "growbin",
            "env": {
                **growbin_env,
                "GROWBIN_JOURNAL_ENABLED": "false",
                "GROWBIN_RESULT_BACKEND_URL": "disabled://",
            },
        },
        BARE: {"kind": "celery", "env": bare_env, "cmd": celery},
        BARE_RESULTS: {
            "kind": "celery",
            "env": {**bare_env, "BENCH_RESULTS": "1"},
            "cmd": celery,
        },
        "Dramatiq (2 processes x 1 thread)": {
            "kind": "dramatiq",
            "env": {"BENCH_BROKER_URL": broker_url, "dramatiq_queue_prefetch": "4"},
            "cmd": [
                *(sys.executable, "-m", "dramatiq", "bench.dramatiq_actors"),
                *("--processes", "2", "--threads", "1"),
            ],
        },
    }


def _enqueue(kind: str, key: str, tasks: int, topology: Path, broker_url: str) -> None:
    if kind == "growbin":
        from growbin.runtime.celery_app import create_app
        from growbin.settings import load_settings
        from growbin.topology import loader

        settings = load_settings(env="test", broker_url=broker_url, topology=str(topology))
        app = create_app(settings, loader.load(str(topology)), registrars=())
        with app.producer_or_acquire() as producer:
            for _ in range(tasks):
                app.send_task("growbin.bench.count", args=(key,), producer=producer)
        app.close()
    elif kind == "celery":
        from celery import Celery

        # a publisher of its own per vhost: an app keeps its broker connections
        publisher = Celery("bench-publisher", broker=broker_url, set_as_current=False)
        with publisher.producer_or_acquire() as producer:
            for _ in range(tasks):
                publisher.send_task(
                    "bench.count", args=(key,), queue="bench.plain", producer=producer
                )
        publisher.close()
    else:
        import dramatiq
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=broker_url)
        broker.declare_queue("bench_dramatiq")
        for _ in range(tasks):
            message: dramatiq.Message[Any] = dramatiq.Message(
                queue_name="bench_dramatiq", actor_name="count", args=(key,), kwargs={}, options={}
            )
            broker.enqueue(message)
        broker.close()


def run_once(
    name: str, spec: dict[str, Any], tasks: int, topology: Path, broker_url: str, workdir: Path
) -> dict[str, float]:
    """Queue ``tasks``, start the worker, time them; then, with the worker warm, send as many
    again and count the CPU the worker's processes spend on them."""
    key, warm_key = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    _enqueue(spec["kind"], key, tasks, topology, broker_url)
    r = redis.Redis.from_url(common.REDIS_URL)
    with common.processes(workdir) as group:
        if spec["kind"] == "growbin":
            env = {**spec["env"], "GROWBIN_METRICS_PORT": str(_free_port())}
            cmd = common.growbin_worker_cmd(topology, "bench", f"bench@{key}")
        else:
            env, cmd = spec["env"], [*spec["cmd"]]
            if spec["kind"] == "celery":
                cmd += ["-Q", "bench.plain", "-n", f"plain@{key}"]
        worker = group.start(name.split()[0].lower(), cmd, env)

        def done(k: str) -> bool:
            worker.check()
            return int(r.get(f"bench:{k}:count") or 0) >= tasks

        common.wait_until(lambda: done(key), timeout=300, what=f"{tasks} tasks on {name}")
        cpu_before = common.tree_cpu_seconds(worker.proc.pid)
        _enqueue(spec["kind"], warm_key, tasks, topology, broker_url)
        common.wait_until(lambda: done(warm_key), timeout=300, what=f"{tasks} more on {name}")
        cpu = common.tree_cpu_seconds(worker.proc.pid) - cpu_before
    first = float(r.get(f"bench:{key}:first") or 0)
    last = float(r.get(f"bench:{key}:last") or 0)
    completed = int(r.get(f"bench:{key}:count") or 0)
    for k in (key, warm_key):
        r.delete(f"bench:{k}:first", f"bench:{k}:last", f"bench:{k}:count")
    r.close()
    return {
        "completed": completed,
        "seconds": last - first,
        "rate": completed / (last - first),
        "cpu_ms_per_task": 1000 * cpu / tasks,
    }


def run(quick: bool, workdir: Path) -> dict[str, Any]:
    from growbin.topology import loader
    from growbin.topology.broker_api import BrokerApi
    from growbin.topology.plan import apply

    tasks, rounds = (1000, 1) if quick else (2000, 4)
    with common.temp_vhost("throughput") as vhost:
        topology = workdir / "throughput.yaml"
        topology.write_text(TOPOLOGY)
        with BrokerApi(common.API_URL) as api:
            live = loader.load(str(topology)).topology.model_copy(update={"vhost": vhost.name})
            apply(live, api)
        specs = variants(workdir, topology, vhost.broker_url)
        names = list(specs)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in specs}
        for round_ in range(rounds):
            # each round starts with another variant, so none always runs first or last
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                result = run_once(name, specs[name], tasks, topology, vhost.broker_url, workdir)
                runs[name].append(result)
                common.console.print(
                    f"  round {round_ + 1}: {name}: {result['rate']:.0f} tasks/s", highlight=False
                )
    # This machine is shared: absolute rates drift by 2x between rounds. Ratios are taken
    # within a round (paired), then their median, so a slow minute hits both sides of a ratio.
    bare = [r["rate"] for r in runs[BARE]]
    bare_results = [r["rate"] for r in runs[BARE_RESULTS]]
    summary = []
    rows = []
    for name, results in runs.items():
        rates = [r["rate"] for r in results]
        ratio = statistics.median(a / b for a, b in zip(rates, bare, strict=True))
        ratio_results = statistics.median(a / b for a, b in zip(rates, bare_results, strict=True))
        each = "/".join(f"{r:.0f}" for r in rates)
        cpu = statistics.median(r["cpu_ms_per_task"] for r in results)
        rows.append(
            [
                name,
                f"{statistics.median(rates):.0f}",
                each,
                f"{ratio:.2f}",
                f"{ratio_results:.2f}",
                f"{cpu:.2f}",
            ]
        )
        summary.append(
            {
                "variant": name,
                "median_rate": round(statistics.median(rates), 1),
                "rates": [round(r, 1) for r in rates],
                "completed": [int(r["completed"]) for r in results],
                "ratio_to_bare_celery": round(ratio, 3),
                "ratio_to_bare_celery_with_results": round(ratio_results, 3),
                "cpu_ms_per_task": round(cpu, 3),
                "cpu_ms_per_task_rounds": [round(r["cpu_ms_per_task"], 3) for r in results],
            }
        )
    common.print_table(
        f"(b) throughput: {tasks} no-op tasks x {rounds} round(s), one worker ({POOL}); "
        "ratios: median of per-round ratios",
        ["variant", "tasks/s", "each round", "x bare", "x bare+results", "CPU ms/task"],
        rows,
    )
    return {"tasks": tasks, "rounds": rounds, "worker": POOL, "results": summary}
