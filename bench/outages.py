"""(f) Outages of our own services under load: every accepted scan ends done or failed.

    .venv/bin/python bench/outages.py [--only redis,postgresql] [--scans 200] [--tasks 500]
                                      [--redis-outage 20] [--postgresql-outage 30] [--quick]

One run per outage, each on a deployment of its own: a fresh vhost on this machine's RabbitMQ
with the production preset applied by `growbin topology apply`, a private `redis-server` (no
persistence) and a private PostgreSQL cluster (migrated by `growbin db upgrade`), each on a free
port, and the production preset's processes: `growbin worker` for the ai, api and batch
profiles and `growbin beat`. Scans (through ``growbin.scan.intake.submit_scan``, the API's
path) and small tasks (``growbin.demo.add`` through the topology's router) are submitted at a
steady rate, starting before the outage and ending after it. The outage is either Redis killed
with SIGKILL (it comes back empty, on the same port) or PostgreSQL stopped with ``pg_ctl -m
immediate`` (a crash), for the given seconds. Nobody touches anything afterwards: no restart,
no replay. After a settle time, accounting (bench/outage_accounting.py; the deployment is
bench/outage_deploy.py):

- scans: rows by status in PostgreSQL (done, failed; queued/running = not terminal);
- small tasks: each task's best state over all workers' journals (completed, failed);
- dead letters: every message in q.dlq (held unacked, then requeued), by reason;
- queues: ready (passive declare: exact) and unacknowledged (management API, read once its
  statistics held still for two refresh intervals), with the harness's beat stopped first;
- processes: each worker's and beat's PID at the start and the end (a restart shows).

"Lost" is accepted but neither terminal nor dead-lettered. The guarantees (issue 10): accepted
scans = done + failed, lost = 0, no unacknowledged message on any queue once all is quiet,
every process alive with its first PID. bench/results/outages.json keeps the tables;
tests/integration/faults/test_outages.py runs the same harness small.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import asdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # `python bench/outages.py`: make `bench.*` and `tests.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.outage_accounting import Submitted, account, settle
from bench.outage_deploy import SERVICES, Deployment, OutagePlan, deployment

__all__ = ["OutagePlan", "print_report", "quick_plan", "run_outage"]

SMALL_TASK = "growbin.demo.add"


def quick_plan(service: str) -> OutagePlan:
    """The small run of the test suite: same deployment and checks, a minute or two each.

    dlq-sync runs every 10 s instead of the preset's 60 s, so that whatever it reconciles
    happens within the settle time.
    """
    return OutagePlan(
        service=service,
        outage=8.0 if service == "redis" else 10.0,
        scans=40,
        tasks=100,
        lead=6.0,
        tail=8.0,
        dlq_sync_every=10.0,
        settle_idle=45.0,
        settle_max=240.0,
    )


def _say(message: str) -> None:
    common.console.print(message, highlight=False)


def _spread(
    count: int, start: float, window: float, threads: int, submit: Callable[[int], str]
) -> Submitted:
    """Call ``submit(i)`` at start + i * window / count, on a few threads (a call blocked by
    the outage does not hold back the others)."""

    def one(i: int) -> tuple[str | None, str | None]:
        delay = start + i * window / max(count, 1) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            return submit(i), None
        except Exception as exc:
            return None, type(exc).__name__

    pool = ThreadPoolExecutor(threads, thread_name_prefix="submit")
    futures = [pool.submit(one, i) for i in range(count)]
    done, not_done = wait_futures(futures, timeout=window + 180)
    pool.shutdown(wait=False, cancel_futures=True)
    result = Submitted(accepted=[], refused=Counter(), hung=len(not_done))
    for future in futures:
        if future in done:
            ident, refusal = future.result()
            if ident is not None:
                result.accepted.append(ident)
            else:
                result.refused[refusal or "?"] += 1
    return result


def run_load(dep: Deployment) -> tuple[Submitted, Submitted, dict[str, float]]:
    """Submit scans and small tasks through the window; take the service down in the middle."""
    from bench.scan_chain import photos

    from growbin.scan.intake import submit_scan

    plan = dep.plan
    images = list(photos(plan.scans, seed=10))
    outcome: dict[str, Submitted] = {}

    def scan(i: int) -> str:
        accepted = submit_scan(dep.app, dep.ctx, images[i], filename=f"outage-{i}.jpg")
        return accepted.scan_id

    def task(i: int) -> str:
        return str(dep.app.signature(SMALL_TASK, args=(i, 1)).apply_async().id)

    start = time.monotonic() + 0.5

    def submitter(kind: str, count: int, submit: Callable[[int], str]) -> threading.Thread:
        def run() -> None:
            outcome[kind] = _spread(count, start, plan.window, plan.submit_threads, submit)

        return threading.Thread(target=run, name=f"submit-{kind}", daemon=True)

    threads = [submitter("scans", plan.scans, scan), submitter("tasks", plan.tasks, task)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start + plan.lead - time.monotonic()))
    down_at = time.monotonic()
    dep.down()
    _say(f"  {plan.service} down at t={down_at - start:.1f}s")
    time.sleep(max(0.0, down_at + plan.outage - time.monotonic()))
    dep.up()
    up_at = time.monotonic()
    _say(f"  {plan.service} up again at t={up_at - start:.1f}s ({up_at - down_at:.1f}s down)")
    for thread in threads:
        thread.join(timeout=plan.window + 240)
    timing = {
        "down_at_s": round(down_at - start, 1),
        "down_for_s": round(up_at - down_at, 1),
        "load_ended_s": round(time.monotonic() - start, 1),
    }
    empty = Submitted(accepted=[], refused=Counter({"submitter did not finish": 1}))
    return outcome.get("scans", empty), outcome.get("tasks", empty), timing


def run_outage(plan: OutagePlan, workdir: Path, **given: Any) -> dict[str, Any]:
    """One outage on a deployment of its own; the accounting tables as a dict.

    ``given``: the vhost, redis and postgres that :func:`deployment` may be handed.
    """
    t0 = time.monotonic()
    with deployment(plan, workdir, **given) as dep:
        setup = time.monotonic() - t0
        pids = {p.name: p.proc.pid for p in dep.group.started}
        _say(f"  deployment up in {setup:.0f}s: {', '.join(pids)}")
        scans, tasks, timing = run_load(dep)
        _say(
            f"  accepted {len(scans.accepted)}/{plan.scans} scans, "
            f"{len(tasks.accepted)}/{plan.tasks} tasks; settling"
        )
        settled = settle(dep, scans.accepted, tasks.accepted)
        result = account(dep, scans, tasks, pids, settled)
    result["plan"] = asdict(plan)
    result["timing"] = {
        **timing,
        "setup_s": round(setup, 1),
        "total_s": round(time.monotonic() - t0, 1),
    }
    return result


def print_report(result: dict[str, Any]) -> None:
    plan = result["plan"]
    title = (
        f"{plan['service']} down {result['timing']['down_for_s']}s under "
        f"{plan['scans']} scans + {plan['tasks']} small tasks"
    )
    s, t = result["scans"], result["small_tasks"]
    common.print_table(
        f"{title}: scans",
        [
            "accepted",
            "refused",
            "done",
            "failed",
            "queued",
            "running",
            "in dlq",
            "lost",
        ],
        [
            [
                s["accepted"],
                sum(s["refused_at_submit"].values()),
                s["done"],
                s["failed"],
                s["queued"],
                s["running"],
                s["dead_lettered"],
                s["lost"],
            ]
        ],
    )
    states = t["by_journal_state"]
    common.print_table(
        f"{title}: small tasks ({SMALL_TASK})",
        [
            "accepted",
            "refused",
            "completed",
            "failed",
            "unfinished",
            "in dlq",
            "lost",
        ],
        [
            [
                t["accepted"],
                sum(t["refused_at_submit"].values()),
                states.get("completed", 0),
                states.get("failed", 0),
                t["not_terminal"],
                t["dead_lettered"],
                t["lost"],
            ]
        ],
    )
    common.print_table(
        f"{title}: queues at the end (unacked settled: {result['unacked_settled']})",
        ["queue", "ready", "unacked", "consumers"],
        [[q, v["ready"], v["unacked"], v["consumers"]] for q, v in result["queues"].items()],
    )
    common.print_table(
        f"{title}: processes",
        ["process", "pid at start", "pid at end", "exit code", "log signals"],
        [
            [
                n,
                p["pid_start"],
                p["pid_end"],
                p["exit_code"],
                json.dumps(result["worker_log_signals"].get(n, {})),
            ]
            for n, p in result["processes"].items()
        ],
    )
    if result["dead_letters"]["total"]:
        common.print_table(
            f"{title}: dead letters by reason",
            ["reason", "count"],
            [[r, c] for r, c in result["dead_letters"]["by_reason"].items()],
        )
    for reason, count in s["failure_reasons"].items():
        _say(f"  failed scans ({count}): {reason}")
    _say(f"  settle: {result['settle']['ended']} after {result['settle']['seconds']}s")
    for check, passed in result["checks"].items():
        _say(f"  {'PASS' if passed else 'FAIL'}  {check}")


def _sigterm(*_: Any) -> None:
    raise SystemExit(143)  # so that every finally block (and teardown) runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/outages.py", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--only", default=",".join(SERVICES), help="redis, postgresql or both")
    parser.add_argument(
        "--quick", action="store_true", help="the test suite's small plan (other sizes ignored)"
    )
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--redis-outage", type=float, default=20.0)
    parser.add_argument("--postgresql-outage", type=float, default=30.0)
    parser.add_argument("--ai-workers", type=int, default=2)
    parser.add_argument("--settle-idle", type=float, default=120.0)
    parser.add_argument("--output", default=str(common.RESULTS / "outages.json"))
    parser.add_argument(
        "--label", default="", help="what code this run measured (kept in the JSON)"
    )
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := sorted(set(args.only) - set(SERVICES)):
        parser.error(f"unknown service(s) {', '.join(unknown)}: choose from redis, postgresql")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    outages = {"redis": args.redis_outage, "postgresql": args.postgresql_outage}
    runs: dict[str, Any] = {}
    for service in args.only:
        plan = (
            quick_plan(service)
            if args.quick
            else OutagePlan(
                service=service,
                outage=outages[service],
                scans=args.scans,
                tasks=args.tasks,
                ai_workers=args.ai_workers,
                settle_idle=args.settle_idle,
            )
        )
        common.console.rule(f"{service} outage, {plan.outage:.0f}s")
        with tempfile.TemporaryDirectory(prefix=f"growbin-outage-{service}-") as tmp:
            runs[service] = run_outage(plan, Path(tmp))
        print_report(runs[service])
    payload = {
        "scenario": "outages",
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "label": args.label,
        "runs": runs,
        "ok": all(r["ok"] for r in runs.values()),
    }
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    _say(f"wrote {path}")
    return 0 if payload["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
