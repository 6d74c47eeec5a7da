"""A per-process batching writer: events wait in memory briefly and are committed together.

The hot path (a task's signal handler) appends a row to a list. A background thread commits
the list every ``flush_interval`` seconds, or at once when it holds ``batch_size`` rows, so a
burst of tasks costs one commit per batch instead of one per event.

A caller may need its row committed before it goes on (``submit(row, wait=True)``: the hooks
do this for a task's last event, so the task is acked only once the journal holds its end).
That caller commits in its own thread, together with everything pending: no hand-off to the
background thread and back, which would cost two thread switches per task.

What a kill -9 can lose: the rows pending in memory, that is events younger than
``flush_interval`` (50 ms by default), never a task's last event when the caller waited for it.
A transaction is atomic, so a batch is either all there or not at all, and the file never
needs repair.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from growbin.journal.rows import JournalRow
from growbin.journal.store import JournalStore

logger = logging.getLogger("growbin.journal")

RETRY_SECONDS = 0.5  # after a failed commit (disk full, a lock held past busy_timeout)


class JournalWriter:
    def __init__(
        self,
        open_store: Callable[[], JournalStore],
        *,
        batch_size: int = 200,
        flush_interval: float = 0.05,
        wait_timeout: float = 5.0,
    ) -> None:
        self._open_store = open_store
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.wait_timeout = wait_timeout
        self._pending: list[JournalRow] = []
        self._cond = threading.Condition()
        self._commit_lock = threading.Lock()  # one commit at a time on the shared connection
        self._store: JournalStore | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.committed = 0  # rows, for tests and stats
        self.failed_commits = 0

    def submit(self, row: JournalRow, *, wait: bool = False) -> bool:
        """Add a row; with ``wait``, commit it (and all pending) now. False if that failed."""
        if wait:
            return self._commit_now(row)
        with self._cond:
            self._pending.append(row)
            if len(self._pending) >= self.batch_size:
                self._cond.notify()
        self._ensure_thread()
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Commit everything pending now."""
        return self._commit_now(None, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Commit what is pending, stop the thread, close the file."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        self._commit_now(None, timeout)
        with self._commit_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def _take(self) -> list[JournalRow]:
        with self._cond:
            rows, self._pending = self._pending, []
        return rows

    def _commit_now(self, row: JournalRow | None, timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout or self.wait_timeout)
        with self._commit_lock:
            rows = self._take()
            if row is not None:
                rows.append(row)
            while rows:
                if self._write(rows):
                    return True
                if time.monotonic() >= deadline:
                    self._give_back(rows)  # the background thread keeps trying
                    logger.error(
                        "journal: %d rows not committed within the wait; the task goes on",
                        len(rows),
                    )
                    return False
                time.sleep(min(RETRY_SECONDS, max(0.0, deadline - time.monotonic())))
        return True

    def _write(self, rows: list[JournalRow]) -> bool:
        """One commit attempt; the caller holds the commit lock."""
        try:
            if self._store is None:
                self._store = self._open_store()
            self._store.write(rows)
        except Exception:
            self.failed_commits += 1
            logger.exception("journal: commit of %d rows failed", len(rows))
            if self._store is not None:
                self._store.close()
                self._store = None
            return False
        self.committed += len(rows)
        return True

    def _give_back(self, rows: list[JournalRow]) -> None:
        with self._cond:
            self._pending[:0] = rows

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._commit_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="growbin-journal", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        # The thread polls every flush_interval rather than being woken by each first row:
        # waking it costs two thread switches, paid by every task when tasks are sparse.
        while True:
            with self._cond:
                if not self._stopping and len(self._pending) < self.batch_size:
                    self._cond.wait(self.flush_interval)
                if self._stopping:
                    return
            with self._commit_lock:
                rows = self._take()
                failed = bool(rows) and not self._write(rows)
                if failed:
                    # keep the rows: dropping them would lose events silently
                    self._give_back(rows)
            if failed:
                time.sleep(RETRY_SECONDS)
