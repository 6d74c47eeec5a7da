"""Every scan reaches a terminal state: open scans reconciled with dead letters and with time.

A scan normally ends through its chain: ``save`` marks it done, and a step that dies is
dead-lettered and :meth:`growbin.scan.pipeline.ScanStep.on_dead_letter` marks it failed. Some
paths escape that hook:

- PostgreSQL is unreachable when the hook runs (it logs and returns, see the hook);
- RabbitMQ dead-letters a step's message itself (expired in its queue, delivery limit,
  overflow, a body no worker could decode): no worker code runs at all;
- a step's message is lost, or held by a worker that makes no progress, or the process that
  accepted the scan died between recording it and publishing its chain.

The dead-letter sync (``growbin.ops.dlq_sync``, every 60 s on every preset's beat) calls
:func:`reconcile_scans` right after archiving the dead-letter queue:

1. A scan still queued or running that has an archived dead letter of one of its steps (queued,
   dropped or purged; not replayed, which runs the step again, nor superseded, whose task
   succeeded) is failed with that step and the dead letter's error, unless the step has been
   done since (a redelivered copy ran).
2. A scan still open whose row has not changed for longer than :func:`stall_bound` is failed as
   stalled, naming the step it waited for. A step's message that is in no queue and in no dead
   letter after that long was lost or is held by a stalled worker; if such a worker comes back
   and runs it, the scan still ends done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from growbin.db.models import DeadLetterRecord, DeadLetterState
from growbin.ops.deadletters.store import Scope
from growbin.scan import records
from growbin.scan.pipeline import TASKS, failure_cause, scan_id_of
from growbin.scan.records import OPEN_STATUSES, STEPS, Scan
from growbin.settings import Settings
from growbin.topology.model import Topology
from growbin.topology.resolve import resolve_route

# Added to the stall bound: one dead-letter sync interval, so that a step's own dead letter
# names the failure before a stall does, and room for clocks that disagree a little.
STALL_GRACE = 60.0
# Dead letters older than the oldest open scan (less this, for clock skew) cannot be its.
CLOCK_SKEW = timedelta(minutes=10)
# A dead letter in one of these says the step died and nothing has run it since.
_DEAD = (
    DeadLetterState.QUEUED.value,
    DeadLetterState.DROPPED.value,
    DeadLetterState.PURGED.value,
)


@dataclass(frozen=True)
class Reconciled:
    failed: int  # open scans failed from a step's dead letter
    stalled: int  # open scans failed for making no progress within the bound
    stall_bound: float | None  # seconds; None: the topology gives no bound (no stall sweep)


def step_bound(topology: Topology, task: str, max_defer: float) -> float | None:
    """The longest one step may take, from its message's publication to its dead letter.

    Every attempt may wait out its queue's message TTL (longer, and RabbitMQ dead-letters it)
    and then run up to the hard time limit; between attempts the backoff waits at most
    ``backoff_max`` (or an open breaker's ``reset_after``); the guards may defer the task for
    ``max_defer`` seconds in all. None when the route has no queue, TTL or time limit.
    """
    route = resolve_route(topology, task)
    queue = topology.queues.get(route.queue) if route and route.queue else None
    if route is None or queue is None or queue.message_ttl is None or route.time_limit is None:
        return None
    retry = route.retry
    wait = max([retry.backoff_max, *(b.reset_after for b in topology.breakers.values())])
    attempts = retry.max_retries + 1
    return attempts * (queue.message_ttl + route.time_limit) + retry.max_retries * wait + max_defer


def stall_bound(topology: Topology, settings: Settings) -> float | None:
    """Seconds an open scan may go without progress before it counts as stalled.

    The longest step (see :func:`step_bound`) plus :data:`STALL_GRACE`. With the presets:
    production 2,820 s (every step on q.ai: 4 x (300 s TTL + 120 s time limit) + 3 x 60 s
    backoff + 900 s of deferral, + 60), pipeline 4,650 s (preprocess on user_input:
    4 x (600 s TTL + 300 s time limit) + 3 x 30 s (the breaker's reset, longer than the 20 s
    backoff) + 900 + 60), slo 3,000 s (classify on q.external:
    4 x (300 + 120) + 3 x 120 + 900 + 60). None if any step has no bound.
    """
    bounds = [step_bound(topology, TASKS[step], settings.guard_max_defer) for step in STEPS]
    if any(b is None for b in bounds):
        return None
    return max(b for b in bounds if b is not None) + STALL_GRACE


def reconcile_scans(
    session: Session,
    topology: Topology,
    settings: Settings,
    *,
    scope: Scope | None = None,
    now: datetime | None = None,
) -> Reconciled:
    """Fail the open scans that a dead letter or the stall bound says will never end.

    ``scope``: the dead-letter queue whose archive is read (default: every one). The caller
    commits.
    """
    moment = now or datetime.now(UTC)
    failed = fail_from_dead_letters(session, scope=scope)
    bound = stall_bound(topology, settings)
    stalled = 0 if bound is None else fail_stalled(session, bound, now=moment)
    return Reconciled(failed=failed, stalled=stalled, stall_bound=bound)


def fail_from_dead_letters(session: Session, *, scope: Scope | None = None) -> int:
    """Fail each open scan that has a dead letter of a step not done since; return how many."""
    query = select(Scan.id, Scan.created_at).where(Scan.status.in_(OPEN_STATUSES))
    open_scans = {scan_id: created_at for scan_id, created_at in session.execute(query)}
    if not open_scans:
        return 0
    oldest = min(open_scans.values())
    conditions = [
        DeadLetterRecord.task_name.in_(list(TASKS.values())),
        DeadLetterRecord.state.in_(_DEAD),
        DeadLetterRecord.dead_lettered_at >= oldest - CLOCK_SKEW,
    ]
    if scope is not None:
        conditions.append(scope.where())
    letters = session.execute(
        select(
            DeadLetterRecord.dead_letter_id,
            DeadLetterRecord.task_name,
            DeadLetterRecord.body,
            DeadLetterRecord.body_base64,
            DeadLetterRecord.reason,
            DeadLetterRecord.exception_type,
            DeadLetterRecord.exception_message,
        )
        .where(*conditions)
        .order_by(DeadLetterRecord.dead_lettered_at, DeadLetterRecord.dead_letter_id)
    ).all()
    failed = 0
    for dead_letter_id, task_name, body, body_base64, reason, exc_type, exc_message in letters:
        scan_id = None if body_base64 else scan_id_of(_task_args(body))
        if scan_id is None or scan_id not in open_scans:
            continue
        step = task_name.rsplit(".", 1)[-1]
        scan = _locked_if_open(session, scan_id)
        if scan is None or (scan.steps or {}).get(step, {}).get("state") == "done":
            continue  # it ended meanwhile, or a copy of the step ran to the end after this died
        scan = records.mark_failed(
            session,
            scan_id,
            step,
            exc_type or reason,
            cause=failure_cause(exc_type, exc_message, reason),
            only_open=True,
            dead_letter_id=dead_letter_id,
            marked_by="dead-letter sync",
        )
        if scan is not None:
            failed += 1
        del open_scans[scan_id]  # its first dead letter names the failure
    return failed


def fail_stalled(session: Session, bound: float, *, now: datetime) -> int:
    """Fail each open scan whose row has not changed for ``bound`` seconds; return how many."""
    cutoff = now - timedelta(seconds=bound)
    candidates = list(
        session.scalars(
            select(Scan.id).where(Scan.status.in_(OPEN_STATUSES), Scan.updated_at < cutoff)
        )
    )
    stalled = 0
    for scan_id in candidates:
        scan = _locked_if_open(session, scan_id)
        if scan is None or scan.updated_at >= cutoff:
            continue
        step = next((s for s in STEPS if (scan.steps or {}).get(s, {}).get("state") != "done"), "")
        quiet = _duration((now - scan.updated_at).total_seconds())
        records.mark_failed(
            session,
            scan_id,
            step or STEPS[-1],
            "stalled",
            cause=(
                f"stalled: no progress for {quiet} (the topology allows {bound:.0f}s for a "
                "step: queue TTL, time limit, retries and deferrals); its message was lost or "
                "is held by a worker that makes no progress: see `growbin status` and "
                "`growbin dlq list --task 'growbin.scan.*'`"
            ),
            only_open=True,
            marked_by="stall sweep",
        )
        stalled += 1
    return stalled


def _duration(seconds: float) -> str:
    """'45s', '12m 5s', '3h 20m', '2d 4h'."""
    whole = max(0, int(seconds))
    for big, size, small, small_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            return f"{whole // size}{big} {whole % size // small_size}{small}"
    return f"{whole // 60}m {whole % 60}s" if whole >= 60 else f"{whole}s"


def _locked_if_open(session: Session, scan_id: str) -> Scan | None:
    """The scan, locked and read afresh (it may have moved since it was selected), if open."""
    locking = session.bind is not None and session.bind.dialect.name != "sqlite"
    scan = session.get(Scan, scan_id, with_for_update=locking, populate_existing=True)
    return scan if scan is not None and scan.status in OPEN_STATUSES else None


def _task_args(body: str) -> Any:
    """The positional arguments of a Celery message body (protocol 2: [args, kwargs, embed])."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    if isinstance(decoded, list) and decoded:
        return decoded[0]
    if isinstance(decoded, dict):  # protocol 1
        return decoded.get("args")
    return None
