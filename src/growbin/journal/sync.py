"""Copy a journal's pending rows into PostgreSQL's task_history, in batches, idempotently.

Each batch is one ``INSERT ... ON CONFLICT (task_id) DO UPDATE`` (a row per task id, so a batch
sent twice changes nothing) and is marked synced in the journal only after PostgreSQL
committed it. If PostgreSQL is down the rows simply stay pending and the next sync takes them;
every run is recorded in sync_log. The update only applies when the incoming rank is not lower
(see rows.py), so a stale copy of a task in another worker's journal cannot undo a newer state.

One sync per journal file at a time (an flock on ``<journal>.sync.lock``): the worker's own
timer, the scheduled task and ``growbin journal sync`` may all try at once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Table, case, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from growbin.db.engine import translate_errors
from growbin.errors import GrowbinError
from growbin.journal.records import TaskHistory
from growbin.journal.rows import STAGES
from growbin.journal.store import JournalStore

logger = logging.getLogger("growbin.journal")

MAX_ROWS_PER_RUN = 100_000  # a journal written faster than it syncs still ends each run


@dataclass(frozen=True)
class SyncResult:
    status: str  # success, failed, busy (another sync holds the file)
    rows: int
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "success"


def sync_journal(store: JournalStore, engine: Engine, *, batch_size: int = 500) -> SyncResult:
    """Send every pending row of ``store`` to PostgreSQL; record the run in sync_log."""
    with _sync_lock(store.path) as held:
        if not held:
            return SyncResult("busy", 0)
        started = time.monotonic()
        sent = 0
        try:
            while sent < MAX_ROWS_PER_RUN:
                rows = store.pending(batch_size)
                if not rows:
                    break
                with translate_errors(engine), engine.begin() as conn:
                    upsert_history(conn, rows)
                store.mark_synced((r["task_id"], r["version"]) for r in rows)
                sent += len(rows)
                if len(rows) < batch_size:
                    break
        except (SQLAlchemyError, GrowbinError) as exc:
            error = str(exc).strip().splitlines()[0][:500]
            seconds = time.monotonic() - started
            store.log_sync("failed", sent, error, seconds)
            logger.warning("journal sync of %s failed after %d rows: %s", store.path, sent, error)
            return SyncResult("failed", sent, error, seconds)
        seconds = time.monotonic() - started
        store.log_sync("success", sent, None, seconds)
        return SyncResult("success", sent, None, seconds)


def upsert_history(conn: Connection, rows: list[dict[str, Any]]) -> None:
    table = TaskHistory.__table__
    assert isinstance(table, Table)
    now = datetime.now(UTC)
    stmt = insert(table).values([_history_values(r, now) for r in rows])
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.task_id],
        set_={
            "task_name": new.task_name,
            "payload": func.coalesce(table.c.payload, new.payload),
            "status": new.status,
            "worker": func.coalesce(new.worker, table.c.worker),
            "queue": func.coalesce(table.c.queue, new.queue),
            "created_at": func.least(table.c.created_at, new.created_at),  # LEAST skips NULLs
            "started_at": func.coalesce(new.started_at, table.c.started_at),
            "completed_at": new.completed_at,
            "error": func.coalesce(new.error, table.c.error),
            "retry_count": new.retry_count,
            "synced_at": new.synced_at,
        },
        where=_rank(new.status, new.retry_count) >= _rank(table.c.status, table.c.retry_count),
    )
    conn.execute(stmt)


def _rank(status: Any, retry_count: Any) -> ColumnElement[int]:
    stage = case(*((status == name, value) for name, value in STAGES.items()), else_=0)
    ranked: ColumnElement[int] = (retry_count * 10 + stage).cast(Integer)
    return ranked


def _history_values(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "task_id": row["task_id"],
        "task_name": row["task_name"],
        "payload": json.loads(row["payload"]) if row["payload"] else None,
        "status": row["status"],
        "worker": row["worker"],
        "queue": row["queue"],
        "created_at": _when(row["created_at"]),
        "started_at": _when(row["started_at"]),
        "completed_at": _when(row["completed_at"]),
        "error": row["error"],
        "retry_count": row["retry_count"] or 0,
        "synced_at": now,
    }


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@contextmanager
def _sync_lock(journal: Path) -> Iterator[bool]:
    lock_path = journal.with_name(journal.name + ".sync.lock")
    with lock_path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
