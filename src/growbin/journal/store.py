"""One connection to a worker's journal file: open it right, write batches, read what to sync.

A connection belongs to one process (after a fork the child opens its own) and is used by one
thread at a time. Several processes share the file: WAL lets readers run beside the one writer, and
``busy_timeout`` makes writers queue instead of failing. Writes take the write lock up front
(BEGIN IMMEDIATE), because a read transaction that later tries to write can fail at once with
SQLITE_BUSY under WAL, whatever the timeout.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growbin.errors import GrowbinError
from growbin.journal.rows import FINISHED, JournalRow
from growbin.journal.schema import SCHEMA, UPSERT

BUSY_FIRST_SLEEP = 0.00005
BUSY_MAX_SLEEP = 0.002


class JournalError(GrowbinError):
    """The journal file cannot be opened or used."""


@dataclass(frozen=True)
class Checkpoint:
    busy: bool  # a reader or writer kept part of the WAL from being copied back
    wal_bytes_before: int
    wal_bytes_after: int


class JournalStore:
    def __init__(self, conn: sqlite3.Connection, path: Path, busy_timeout: float = 10.0) -> None:
        self.conn = conn
        self.path = path
        self.busy_timeout = busy_timeout

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 10.0,
        wal_autocheckpoint: int = 1000,
    ) -> JournalStore:
        if synchronous not in ("NORMAL", "FULL"):
            raise JournalError(f"synchronous {synchronous!r}: use NORMAL or FULL")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # the writer's connection serves two threads, one at a time (its commit lock)
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(
                f"cannot open the journal {path}: {exc}. Fix: point GROWBIN_JOURNAL_PATH at a "
                "writable file on a local disk"
            ) from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(
                    f"the journal {path} cannot use WAL mode (got {mode!r}): keep it on a local "
                    "file system, not a network share"
                )
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
            conn.executescript(SCHEMA)
            conn.execute("PRAGMA busy_timeout=0")  # writes wait in _begin, reads never block
        except sqlite3.Error as exc:
            conn.close()
            raise JournalError(f"cannot prepare the journal {path}: {exc}") from exc
        return cls(conn, path, busy_timeout)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> JournalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, rows: Sequence[JournalRow]) -> None:
        """Upsert a batch of event rows in one transaction."""
        now = time.time()
        params = [
            {
                "task_id": r.task_id,
                "task_name": r.task_name,
                "payload": r.payload,
                "status": r.status,
                "created_at": r.created_at,
                "started_at": r.started_at,
                "completed_at": r.completed_at,
                "error": r.error,
                "retry_count": r.retry_count,
                "worker": r.worker,
                "queue": r.queue,
                "rank": r.rank,
                "updated_at": now,
            }
            for r in rows
        ]
        self._in_transaction(lambda: self.conn.executemany(UPSERT, params))

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """Rows written since their last sync, oldest change first."""
        cursor = self.conn.execute(
            "SELECT task_id, task_name, payload, status, worker, queue, created_at, started_at,"
            " completed_at, error, retry_count, version FROM task_wal"
            " WHERE version > synced_version ORDER BY updated_at LIMIT ?",
            (limit,),
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def mark_synced(self, versions: Iterable[tuple[str, int]]) -> None:
        """Record that these versions reached PostgreSQL; a row changed since stays pending."""
        params = [(version, task_id, version) for task_id, version in versions]
        self._in_transaction(
            lambda: self.conn.executemany(
                "UPDATE task_wal SET synced_version = ? WHERE task_id = ? AND synced_version < ?",
                params,
            )
        )

    def log_sync(self, status: str, rows: int, error: str | None, duration: float) -> None:
        self.conn.execute(
            "INSERT INTO sync_log (synced_at, status, error, rows, duration)"
            " VALUES (?, ?, ?, ?, ?)",
            (time.time(), status, error, rows, duration),
        )

    def checkpoint(self, mode: str = "TRUNCATE") -> Checkpoint:
        # TRUNCATE waits for the writers and readers in its way: let it wait like a write
        # (its page counts read 0 after a TRUNCATE, so the WAL's size tells what it did)
        before = self._wal_bytes()
        self.conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        try:
            busy = self.conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0]
        finally:
            self.conn.execute("PRAGMA busy_timeout=0")
        return Checkpoint(bool(busy), before, self._wal_bytes())

    def _wal_bytes(self) -> int:
        wal = self.path.with_name(self.path.name + "-wal")
        return wal.stat().st_size if wal.exists() else 0

    def prune(self, older_than: float) -> int:
        """Delete finished rows that are synced and older than ``older_than`` (epoch s)."""
        cursor = self.conn.execute(
            "DELETE FROM task_wal WHERE version = synced_version AND completed_at < ?"
            " AND status IN (?, ?)",
            (older_than, *FINISHED),
        )
        self.conn.execute("DELETE FROM sync_log WHERE synced_at < ?", (older_than,))
        return cursor.rowcount

    def integrity_check(self) -> str:
        rows = self.conn.execute("PRAGMA integrity_check").fetchall()
        return "; ".join(str(r[0]) for r in rows)

    def stats(self) -> dict[str, Any]:
        by_status = dict(
            self.conn.execute("SELECT status, COUNT(*) FROM task_wal GROUP BY status").fetchall()
        )
        unsynced = self.conn.execute(
            "SELECT COUNT(*) FROM task_wal WHERE version > synced_version"
        ).fetchone()[0]
        last = self.conn.execute(
            "SELECT synced_at, status, rows, error FROM sync_log ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return {
            "path": str(self.path),
            "rows": sum(by_status.values()),
            "by_status": by_status,
            "unsynced": unsynced,
            "last_sync": None
            if last is None
            else {"at": last[0], "status": last[1], "rows": last[2], "error": last[3]},
            "size_bytes": self.path.stat().st_size if self.path.exists() else 0,
            "wal_bytes": self._wal_bytes(),
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                self.conn.execute("PRAGMA synchronous").fetchone()[0], "?"
            ),
        }

    def _in_transaction(self, work: Callable[[], object]) -> None:
        self._begin()
        try:
            work()
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _begin(self) -> None:
        # SQLite's own busy handler sleeps 1 ms, then 2, 5, 10...: far longer than the other
        # process's write (~0.1 ms) and paid by a task waiting for its commit. Spin finer.
        delay, deadline = BUSY_FIRST_SLEEP, 0.0
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.busy_timeout
                if now > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, BUSY_MAX_SLEEP)
