"""What became of every scan and task of an outage run: the accounting tables.

- scans: rows by status in PostgreSQL (done, failed; queued/running = not terminal);
- small tasks: each task's most advanced state over all workers' journals;
- dead letters: every message in q.dlq, taken unacked and requeued, by reason;
- queues: ready (passive declare: exact) and unacknowledged (management API, read once its
  counters held still for two statistics intervals);
- processes: each one's PID at the start and at the end.

"Lost" is accepted but neither terminal nor dead-lettered.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from bench.outage_deploy import Deployment, growbin_command

WORK_QUEUES = ("q.ai", "q.api", "q.batch", "q.sched")
ALL_QUEUES = (*WORK_QUEUES, "q.dlq", "q.unroutable")
STATS_INTERVAL = 5.0  # the management API's default collect_statistics_interval
# worker log lines worth counting in the report (how the outage looked from inside)
LOG_SIGNALS = {
    "outside body": "Exception raised outside body",
    "dead-lettered": "dead-lettered after",
    "retrying": "retrying in",
    "unrecoverable": "Unrecoverable error",
    "connection lost": "Connection to broker lost",
}


@dataclass
class Submitted:
    """What the submitters got: ids the platform accepted, refusals by exception type."""

    accepted: list[str]
    refused: Counter[str]
    hung: int = 0


def scan_rows(dep: Deployment) -> dict[str, tuple[str, str | None]]:
    from sqlalchemy import select

    from growbin.scan.records import Scan

    with dep.ctx.session() as session:
        return {
            r.id: (r.status, r.error)
            for r in session.execute(select(Scan.id, Scan.status, Scan.error))
        }


def journal_states(workdir: Path) -> dict[str, tuple[str, int, str]]:
    """task id -> (status, rank, task name): the most advanced state in any worker's journal."""
    best: dict[str, tuple[str, int, str]] = {}
    for path in sorted((workdir / "journal").glob("*.db")):
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                rows = conn.execute(
                    "SELECT task_id, status, rank, task_name FROM task_wal"
                ).fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            continue  # not created yet, or busy: the next read sees it
        for task_id, status, rank, name in rows:
            if task_id not in best or rank > best[task_id][1]:
                best[task_id] = (status, rank, name)
    return best


TASK_FINISHED = ("completed", "failed")


def _progress(
    dep: Deployment, scans: list[str], tasks: list[str]
) -> tuple[Counter[str], list[str]]:
    """Scan statuses in PostgreSQL, and the tasks no journal shows finished."""
    try:
        rows = scan_rows(dep)
    except Exception:
        rows = {}  # PostgreSQL still recovering: the next round reads it
    states = journal_states(dep.workdir)
    statuses = Counter(rows.get(s, ("missing", None))[0] for s in scans)
    pending = [t for t in tasks if states.get(t, ("", 0, ""))[0] not in TASK_FINISHED]
    return statuses, pending


def _all_dead_lettered(dep: Deployment, pending: list[str]) -> bool:
    """True when every pending task sits in q.dlq (a dead letter is a terminal state too)."""
    if not pending or len(pending) > dlq_depth(dep):
        return not pending
    try:
        dead = {d["task_id"] for d in read_dead_letters(dep)}
    except Exception:
        return False  # dlq-sync holds the queue's messages: the next round reads them
    return all(t in dead for t in pending)


def settle(dep: Deployment, scans: list[str], tasks: list[str]) -> dict[str, Any]:
    """Wait until every accepted scan is done or failed in PostgreSQL and every task finished
    or dead-lettered, or until nothing moved for ``settle_idle`` seconds.

    Scans must reach their status in PostgreSQL, where a user sees them: a scan whose dead
    letter is in q.dlq but whose row still says running is not finished.
    """
    plan = dep.plan
    started = last_change = time.monotonic()
    last: tuple[int, int] | None = None
    while True:
        statuses, pending = _progress(dep, scans, tasks)
        done_scans = statuses["done"] + statuses["failed"]
        now = time.monotonic()
        if (done_scans, len(pending)) != last:
            last, last_change = (done_scans, len(pending)), now
        if done_scans == len(scans) and _all_dead_lettered(dep, pending):
            reason = "all terminal" + (f" ({len(pending)} tasks dead-lettered)" if pending else "")
            break
        if now - last_change > plan.settle_idle:
            reason = f"no progress for {plan.settle_idle:.0f}s"
            break
        if now - started > plan.settle_max:
            reason = f"gave up after {plan.settle_max:.0f}s"
            break
        time.sleep(2.0)
    return {
        "ended": reason,
        "seconds": round(time.monotonic() - started, 1),
        "scans_terminal": done_scans,
        "tasks_unfinished": len(pending),
        "scan_statuses": dict(statuses),
    }


def dlq_depth(dep: Deployment, queue: str = "q.dlq") -> int:
    """Ready messages in the queue, exactly (a passive declare)."""
    from kombu import Connection

    with Connection(dep.vhost.broker_url, connect_timeout=10) as conn:
        channel = conn.channel()
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        finally:
            channel.close()


def _scan_id_of(body: Any) -> str | None:
    try:
        first = body[0][0]
    except (IndexError, KeyError, TypeError):
        return None
    if isinstance(first, dict):
        first = first.get("scan_id")
    return first if isinstance(first, str) else None


def read_dead_letters(dep: Deployment, queue: str = "q.dlq") -> list[dict[str, Any]]:
    """Every message in the queue, taken unacked and requeued when the channel closes."""
    from kombu import Connection

    found: list[dict[str, Any]] = []
    with Connection(dep.vhost.broker_url, connect_timeout=10) as conn:
        channel = conn.channel()
        try:
            depth = int(channel.queue_declare(queue=queue, passive=True).message_count)
            while len(found) < depth:
                message = channel.basic_get(queue=queue, no_ack=False)
                if message is None:
                    break
                headers = dict(message.headers or {})
                death = headers.get("x-growbin-death") or {}
                x_death = headers.get("x-death") or []
                try:
                    body = json.loads(message.body)
                except (ValueError, TypeError):
                    body = None
                if death:
                    reason = f"{death.get('reason')}: {death.get('exception_type')}"
                elif x_death:
                    reason = f"broker: {x_death[0].get('reason')}"
                else:
                    reason = "no reason given"
                found.append(
                    {
                        "task_id": headers.get("id") or death.get("task_id"),
                        "task": headers.get("task") or death.get("task"),
                        "scan_id": _scan_id_of(body),
                        "reason": reason,
                        "message": str(death.get("exception_message", ""))[:200],
                        "attempts": death.get("attempts"),
                    }
                )
        finally:
            channel.close()  # requeues everything taken
    return found


def queue_table(dep: Deployment, quiet_for: float = 2 * STATS_INTERVAL + 1) -> dict[str, Any]:
    """Ready (exact, passive declare) and unacknowledged (management API, settled) per queue.

    The management API's counters lag by its statistics interval, so they are read until they
    held still for ``quiet_for`` seconds (bounded), and the reading says whether they did.
    """
    from kombu import Connection

    from growbin.topology.broker_api import BrokerApi

    def snapshot(api: BrokerApi) -> dict[str, tuple[int | None, int | None]]:
        out = {}
        for name in ALL_QUEUES:
            stats = api.queue_stats(dep.vhost.name, name)
            out[name] = (stats.messages_unacknowledged, stats.consumers) if stats else (None, None)
        return out

    with BrokerApi(common.API_URL) as api:
        deadline = time.monotonic() + quiet_for + 60
        last = snapshot(api)
        since = time.monotonic()
        while time.monotonic() - since < quiet_for and time.monotonic() < deadline:
            time.sleep(1.0)
            current = snapshot(api)
            if current != last:
                last, since = current, time.monotonic()
        settled = time.monotonic() - since >= quiet_for
    table: dict[str, Any] = {}
    with Connection(dep.vhost.broker_url, connect_timeout=10) as conn:
        channel = conn.channel()
        try:
            for name in ALL_QUEUES:
                ok = channel.queue_declare(queue=name, passive=True)
                table[name] = {
                    "ready": int(ok.message_count),
                    "unacked": last[name][0],
                    "consumers": int(ok.consumer_count),
                }
        finally:
            channel.close()
    return {"queues": table, "unacked_settled": settled}


def worker_view(dep: Deployment) -> dict[str, Any]:
    """What each worker says it holds: tasks running and tasks reserved (prefetched)."""
    inspect = dep.app.control.inspect(timeout=3.0)
    active = inspect.active() or {}
    reserved = inspect.reserved() or {}
    names = sorted(set(active) | set(reserved))
    return {
        n: {"active": len(active.get(n, [])), "reserved": len(reserved.get(n, []))} for n in names
    }


def status_snapshot(dep: Deployment) -> Any:
    """`growbin status --format json` as an operator would see it (recorded, not judged)."""
    try:
        text = growbin_command(dep.env, "status", "--format", "json", timeout=60)
        return json.loads(text)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[-500:]}"}


def log_signals(dep: Deployment) -> dict[str, dict[str, int]]:
    out = {}
    for process in dep.group.started:
        text = process.output()
        out[process.name] = {k: text.count(v) for k, v in LOG_SIGNALS.items() if v in text}
    return out


def account(
    dep: Deployment,
    scans: Submitted,
    tasks: Submitted,
    pids: dict[str, int],
    settled: dict[str, Any],
) -> dict[str, Any]:
    rows = scan_rows(dep)
    states = journal_states(dep.workdir)
    processes = {
        p.name: {
            "pid_start": pids[p.name],
            "pid_end": p.proc.pid if p.proc.poll() is None else None,
            "exit_code": p.proc.poll(),
        }
        for p in dep.group.started
    }
    held = worker_view(dep)
    status = status_snapshot(dep)
    # beat would keep sending dlq-sync (whose run holds q.dlq's messages) and fill q.sched:
    # stop it, then let the batch worker finish what it has, before the exact reads
    if dep.beat is not None:
        dep.beat.stop()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batch = {n: v for n, v in worker_view(dep).items() if n.startswith("batch@")}
        if all(v["active"] == 0 for v in batch.values()):
            break
        time.sleep(1.0)
    dead = read_dead_letters(dep)
    queues = queue_table(dep)

    dead_scans = {d["scan_id"] for d in dead if d["scan_id"]}
    dead_tasks = {d["task_id"] for d in dead if d["task_id"]}
    scan_status = Counter(rows.get(s, ("missing", None))[0] for s in scans.accepted)
    not_terminal = [
        s for s in scans.accepted if rows.get(s, ("missing", None))[0] not in ("done", "failed")
    ]
    lost_scans = [s for s in not_terminal if s not in dead_scans]
    errors = Counter(
        (rows[s][1] or "")[:120] for s in scans.accepted if rows.get(s, ("",))[0] == "failed"
    )
    task_state = Counter(states.get(t, ("never received", 0, ""))[0] for t in tasks.accepted)
    tasks_not_terminal = [
        t for t in tasks.accepted if states.get(t, ("", 0, ""))[0] not in TASK_FINISHED
    ]
    lost_tasks = [t for t in tasks_not_terminal if t not in dead_tasks]
    unacked = {q: v["unacked"] for q, v in queues["queues"].items() if v["unacked"]}
    restarted = [n for n, p in processes.items() if p["pid_end"] != p["pid_start"]]
    scan_table = {
        "submitted": dep.plan.scans,
        "accepted": len(scans.accepted),
        "refused_at_submit": dict(scans.refused),
        "submit_hung": scans.hung,
        "done": scan_status["done"],
        "failed": scan_status["failed"],
        "queued": scan_status["queued"],
        "running": scan_status["running"],
        "other": {
            k: v for k, v in scan_status.items() if k not in ("done", "failed", "queued", "running")
        },
        "not_terminal": len(not_terminal),
        "not_terminal_but_dead_lettered": len(not_terminal) - len(lost_scans),
        "dead_lettered": len(dead_scans & set(scans.accepted)),
        "lost": len(lost_scans),
        "failure_reasons": dict(errors.most_common(8)),
    }
    task_table = {
        "submitted": dep.plan.tasks,
        "accepted": len(tasks.accepted),
        "refused_at_submit": dict(tasks.refused),
        "submit_hung": tasks.hung,
        "by_journal_state": dict(task_state),
        "not_terminal": len(tasks_not_terminal),
        "dead_lettered": len(dead_tasks & set(tasks.accepted)),
        "lost": len(lost_tasks),
    }
    checks = {
        "accepted scans = done + failed": scan_table["accepted"]
        == scan_table["done"] + scan_table["failed"],
        "lost scans = 0": not lost_scans,
        "lost tasks = 0": not lost_tasks,
        "unacked = 0 on every queue": not unacked and queues["unacked_settled"],
        "no process restarted": not restarted,
    }
    return {
        "scans": scan_table,
        "small_tasks": task_table,
        "dead_letters": {
            "total": len(dead),
            "by_reason": dict(Counter(d["reason"] for d in dead)),
            "by_task": dict(Counter(d["task"] for d in dead)),
            "by_attempts": {str(k): v for k, v in Counter(d["attempts"] for d in dead).items()},
        },
        "queues": queues["queues"],
        "unacked_settled": queues["unacked_settled"],
        "workers_held_before_beat_stopped": held,
        "growbin_status": status,
        "processes": processes,
        "restarted": restarted,
        "worker_log_signals": log_signals(dep),
        "settle": settled,
        "checks": checks,
        "ok": all(checks.values()),
        "examples": {"lost_scans": lost_scans[:5], "lost_tasks": lost_tasks[:5]},
    }
