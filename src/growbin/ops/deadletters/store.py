"""Repository functions for the dead-letter archive. Each takes the session; none commits.

Writes are idempotent: :func:`upsert` inserts a dead letter once and afterwards only notes that
it was seen again, so reading the queue any number of times never duplicates a record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, func, literal_column, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from growbin.db.models import DeadLetterRecord, DeadLetterState
from growbin.journal.records import TaskHistory
from growbin.ops.deadletters.errors import DeadLetterNotFoundError
from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.headers import body_text, json_safe, pg_text
from growbin.ops.deadletters.message import DeadLetter

# PostgreSQL takes at most 65535 bind parameters per statement; a row has about 35
UPSERT_CHUNK = 500
MIN_PREFIX = 6

Record = DeadLetterRecord


@dataclass(frozen=True)
class Scope:
    """One dead-letter queue: records are per vhost and per holding queue."""

    vhost: str
    dead_letter_queue: str

    def where(self) -> ColumnElement[bool]:
        return and_(Record.vhost == self.vhost, Record.dead_letter_queue == self.dead_letter_queue)


def row(letter: DeadLetter, *, vhost: str, seen_at: datetime) -> dict[str, Any]:
    body, is_base64 = body_text(letter.message.body)
    values = {
        "dead_letter_id": letter.dead_letter_id,
        "vhost": vhost,
        "dead_letter_queue": letter.dead_letter_queue,
        "origin": letter.origin.value,
        "task_id": letter.task_id,
        "task_name": letter.task_name,
        "reason": letter.reason,
        "exchange": letter.exchange,
        "routing_key": letter.routing_key,
        "queue": letter.queue,
        "attempts": letter.attempts,
        "first_failure": letter.first_failure,
        "last_failure": letter.last_failure,
        "exception_type": letter.exception_type,
        "exception_message": letter.exception_message,
        "traceback": letter.traceback,
        "retryable": letter.retryable,
        "worker": letter.worker,
        "headers": json_safe(letter.message.headers),
        "properties": json_safe(letter.message.properties),
        "body": body,
        "body_base64": is_base64,
        "content_type": letter.content_type,
        "content_encoding": letter.content_encoding,
        "state": DeadLetterState.QUEUED.value,
        "dead_lettered_at": letter.dead_lettered_at,
        "recorded_at": seen_at,
        "updated_at": seen_at,
        "last_seen_at": seen_at,
    }
    # any text a message brought (a header, an exception message) may hold a NUL
    return {k: pg_text(v) if isinstance(v, str) else v for k, v in values.items()}


def upsert(
    session: Session, letters: Iterable[DeadLetter], *, vhost: str, seen_at: datetime
) -> int:
    """Archive dead letters seen in the queue at ``seen_at``; return how many were new.

    A record seen again is queued, whatever it said before: the queue is the truth about what
    is still there (a replay or purge whose ack never reached the broker shows up here again).
    Its first-seen fields (recorded_at, dead_lettered_at, replay history) are kept.
    """
    rows = {letter.dead_letter_id: row(letter, vhost=vhost, seen_at=seen_at) for letter in letters}
    values = list(rows.values())
    inserted = 0
    for start in range(0, len(values), UPSERT_CHUNK):
        rows_in = insert(Record).values(values[start : start + UPSERT_CHUNK])
        upserting = rows_in.on_conflict_do_update(
            index_elements=[Record.dead_letter_id],
            set_={
                "state": DeadLetterState.QUEUED.value,
                "last_seen_at": rows_in.excluded.last_seen_at,
                "updated_at": rows_in.excluded.updated_at,
            },
        )
        # xmax is 0 on a row this statement inserted, and set on one it updated
        stmt = upserting.returning(literal_column("(xmax = 0)", Boolean))
        inserted += sum(1 for (was_inserted,) in session.execute(stmt) if was_inserted)
    return inserted


def mark_dropped(session: Session, scope: Scope, *, seen_at: datetime) -> int:
    """Queued records a full read at ``seen_at`` did not see: the drop-head cap (or a person)
    removed their message. The record and its body stay, so the task can still be replayed.
    """
    stmt = (
        update(Record)
        .where(
            scope.where(),
            Record.state == DeadLetterState.QUEUED.value,
            or_(Record.last_seen_at.is_(None), Record.last_seen_at < seen_at),
        )
        .values(state=DeadLetterState.DROPPED.value, updated_at=seen_at)
    )
    return _rowcount(session.execute(stmt))


# The journal's status for a task that returned (growbin.journal.rows.COMPLETED).
SUCCEEDED = "completed"
_OPEN = (DeadLetterState.QUEUED.value, DeadLetterState.DROPPED.value)


def mark_superseded(session: Session, scope: Scope, *, at: datetime) -> list[str]:
    """Close open records whose task id succeeded after all; return their ids.

    The proof is task_history (every worker's journal, synced to PostgreSQL): a row for the
    same task id and task name whose status is completed. It covers every task, not only
    scans, and outlives the result backend's expiry. A success is final within an attempt (see
    growbin.journal.rows), so a redelivered copy that succeeded is not hidden by the failure.
    """
    history = TaskHistory
    proof = func.concat(
        "task_history: completed on ", func.coalesce(history.worker, "an unknown worker")
    )
    stmt = (
        update(Record)
        .where(
            scope.where(),
            Record.state.in_(_OPEN),
            Record.task_id == history.task_id,
            Record.task_name == history.task_name,
            history.status == SUCCEEDED,
        )
        .values(
            state=DeadLetterState.SUPERSEDED.value,
            superseded_at=func.coalesce(history.completed_at, history.synced_at),
            superseded_by=proof,
            updated_at=at,
        )
        .returning(Record.dead_letter_id)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(stmt))


def mark_replayed(
    session: Session, dead_letter_ids: Sequence[str], *, to: str, at: datetime | None = None
) -> int:
    when = at or datetime.now(UTC)
    stmt = (
        update(Record)
        .where(Record.dead_letter_id.in_(dead_letter_ids))
        .values(
            state=DeadLetterState.REPLAYED.value,
            replay_count=Record.replay_count + 1,
            last_replayed_at=when,
            last_replayed_to=to,
            updated_at=when,
        )
    )
    return _rowcount(session.execute(stmt))


def mark_purged(
    session: Session, dead_letter_ids: Sequence[str], *, at: datetime | None = None
) -> int:
    when = at or datetime.now(UTC)
    stmt = (
        update(Record)
        .where(Record.dead_letter_id.in_(dead_letter_ids))
        .values(state=DeadLetterState.PURGED.value, updated_at=when)
    )
    return _rowcount(session.execute(stmt))


def get(session: Session, dead_letter_id: str) -> DeadLetterRecord | None:
    return session.get(Record, dead_letter_id)


def find(session: Session, id_or_prefix: str, scope: Scope | None = None) -> DeadLetterRecord:
    """The record with this id, or the only one whose id starts with it (6+ characters)."""
    ident = id_or_prefix.strip().lower()
    exact = session.get(Record, ident)
    if exact is not None and (scope is None or _in_scope(exact, scope)):
        return exact
    where_scope = scope.where() if scope is not None else true()
    matches: list[DeadLetterRecord] = []
    if len(ident) >= MIN_PREFIX:
        prefix = _escape_like(ident) + "%"
        stmt = select(Record).where(where_scope, Record.dead_letter_id.like(prefix)).limit(2)
        matches = list(session.scalars(stmt))
    where = f" in {scope.dead_letter_queue} (vhost {scope.vhost})" if scope else ""
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DeadLetterNotFoundError(
            f"dead letter id {id_or_prefix!r} matches more than one record{where}: "
            "give more of the id (see `growbin dlq list`)"
        )
    raise DeadLetterNotFoundError(
        f"no dead letter with id {id_or_prefix!r}{where}: list them with `growbin dlq list`"
        + ("" if len(ident) >= MIN_PREFIX else f" (a prefix needs {MIN_PREFIX}+ characters)")
    )


def _in_scope(record: DeadLetterRecord, scope: Scope) -> bool:
    return record.vhost == scope.vhost and record.dead_letter_queue == scope.dead_letter_queue


def list_records(
    session: Session,
    flt: DeadLetterFilter,
    *,
    scope: Scope | None = None,
    default_states: Sequence[DeadLetterState] = (),
    now: datetime | None = None,
    limit: int | None = None,
) -> list[DeadLetterRecord]:
    """Records matching ``flt``, newest dead letter first.

    ``default_states`` applies when the filter names no state (replay uses queued + dropped).
    """
    moment = now or datetime.now(UTC)
    conditions: list[ColumnElement[bool]] = []
    if scope is not None:
        conditions.append(scope.where())
    if flt.task:
        conditions.append(_task_condition(flt.task))
    if flt.queue:
        conditions.append(Record.queue == flt.queue)
    if flt.reason:
        conditions.append(Record.reason == flt.reason)
    if flt.exception:
        needle = "%" + _escape_like(flt.exception) + "%"
        conditions.append(
            or_(Record.exception_type.ilike(needle), Record.exception_message.ilike(needle))
        )
    states = flt.states or tuple(default_states)
    if states:
        conditions.append(Record.state.in_([s.value for s in states]))
    if flt.older_than is not None:
        conditions.append(Record.dead_lettered_at <= moment - flt.older_than)
    if flt.newer_than is not None:
        conditions.append(Record.dead_lettered_at >= moment - flt.newer_than)
    stmt = (
        select(Record)
        .where(*conditions)
        .order_by(Record.dead_lettered_at.desc(), Record.dead_letter_id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def count_by_state(session: Session, scope: Scope) -> dict[str, int]:
    stmt = select(Record.state, func.count()).where(scope.where()).group_by(Record.state)
    counts = {state.value: 0 for state in DeadLetterState}
    counts.update({state: int(n) for state, n in session.execute(stmt)})
    return counts


def _task_condition(pattern: str) -> ColumnElement[bool]:
    if not any(ch in pattern for ch in "*?"):
        return Record.task_name == pattern
    like = _escape_like(pattern).replace("*", "%").replace("?", "_")
    return Record.task_name.like(like)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
