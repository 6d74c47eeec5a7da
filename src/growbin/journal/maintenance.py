"""Each worker looks after its own journal: sync every 5 minutes, checkpoint every hour.

Why a timer in every worker and not only the beat's tasks: beat publishes one
``growbin.journal.sync`` message, which one worker takes, and a worker can only read its own
journal file (it is on that worker's disk). A broadcast through Celery's remote control would
reach every worker, but it is best effort (a worker that is restarting misses it) and needs the
broker up. The timer needs nothing but the worker itself, and its sync runs in the worker's
main process, which runs no tasks, so it never takes a pool slot. The beat tasks remain as the
seed's schedule: they sync and checkpoint the journal of the worker that runs them.
"""

from __future__ import annotations

import logging
import threading
import time

from growbin.journal.config import JournalConfig
from growbin.journal.store import Checkpoint, JournalStore
from growbin.journal.sync import SyncResult, sync_journal
from growbin.settings import Settings

logger = logging.getLogger("growbin.journal")

FINAL_SYNC_SECONDS = 10.0


def run_sync(settings: Settings, config: JournalConfig, hostname: str | None) -> SyncResult:
    """One sync of one worker's journal, with a fresh engine (nothing kept between runs)."""
    from growbin.db.engine import make_engine

    engine = make_engine(settings)
    try:
        with open_store(config, hostname) as store:
            return sync_journal(store, engine, batch_size=config.sync_batch_size)
    finally:
        engine.dispose()


def run_checkpoint(config: JournalConfig, hostname: str | None) -> tuple[Checkpoint, int]:
    """Copy the WAL back into the database file and truncate it; prune old synced rows."""
    with open_store(config, hostname) as store:
        pruned = store.prune(time.time() - config.retention)
        return store.checkpoint("TRUNCATE"), pruned


def open_store(config: JournalConfig, hostname: str | None) -> JournalStore:
    return JournalStore.open(
        config.path_for(hostname),
        synchronous=config.synchronous,
        busy_timeout=config.busy_timeout,
        wal_autocheckpoint=config.wal_autocheckpoint,
    )


class JournalMaintenance:
    """A daemon thread in the worker's main process; started once the worker is ready."""

    def __init__(self, settings: Settings, config: JournalConfig, hostname: str | None) -> None:
        self.settings = settings
        self.config = config
        self.hostname = hostname
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="growbin-journal-maintenance", daemon=True
        )

    def start(self) -> None:
        if self.config.sync_interval or self.config.checkpoint_interval:
            self._thread.start()

    def stop(self, *, final_sync: bool = False) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(FINAL_SYNC_SECONDS)
        if final_sync and self.config.sync_interval:
            # a worker that is going away leaves as little as possible behind unsynced
            self._sync()

    def _run(self) -> None:
        now = time.monotonic()
        # the first sync comes soon after start: it takes what a previous life left behind
        next_sync = now + min(self.config.sync_interval, 5.0) if self.config.sync_interval else 0
        cp_every = self.config.checkpoint_interval
        next_checkpoint = now + cp_every if cp_every else 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if next_sync and now >= next_sync:
                self._sync()
                next_sync = time.monotonic() + self.config.sync_interval
            if next_checkpoint and now >= next_checkpoint:
                self._checkpoint()
                next_checkpoint = time.monotonic() + cp_every
            wake = min(t for t in (next_sync, next_checkpoint) if t)
            self._stop.wait(max(0.05, wake - time.monotonic()))

    def _sync(self) -> None:
        try:
            result = run_sync(self.settings, self.config, self.hostname)
        except Exception:
            logger.exception("journal sync failed")
            return
        if result.ok and result.rows:
            logger.info("journal: %d rows synced in %.2f s", result.rows, result.seconds)

    def _checkpoint(self) -> None:
        try:
            checkpoint, pruned = run_checkpoint(self.config, self.hostname)
        except Exception:
            logger.exception("journal checkpoint failed")
            return
        logger.info(
            "journal checkpoint: WAL %d -> %d bytes (busy=%s), %d old rows pruned",
            checkpoint.wal_bytes_before,
            checkpoint.wal_bytes_after,
            checkpoint.busy,
            pruned,
        )
