"""The journal as task hooks: every lifecycle event becomes an upsert in the worker's journal.

Hooks are built in the worker's main process before the pool forks, so nothing is opened here:
each process makes its own writer (thread + SQLite connection) at its first event. A forked
child sees its parent's writer in ``_writers`` under the parent's pid and never touches it
(an SQLite connection must not cross a fork); it makes its own.

Wiring (:func:`worker_journal`): the worker's name fixes the file; the main process runs the
periodic sync and checkpoint (:mod:`growbin.journal.maintenance`) once the worker is ready,
and every process commits what it has queued when it shuts down.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery, signals

from growbin.journal.config import JournalConfig
from growbin.journal.rows import row_from_event
from growbin.journal.store import JournalStore
from growbin.journal.writer import JournalWriter
from growbin.runtime.hooks import BaseHooks, TaskEvent
from growbin.settings import Settings

logger = logging.getLogger("growbin.journal")


class JournalHooks(BaseHooks):
    def __init__(self, config: JournalConfig, *, hostname: str | None = None) -> None:
        self.config = config
        self.hostname = hostname
        self._writers: dict[int, JournalWriter] = {}
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # another thread of the parent may have held the lock at the fork
        self._lock = threading.Lock()

    def open_store(self) -> JournalStore:
        c = self.config
        return JournalStore.open(
            c.path_for(self.hostname),
            synchronous=c.synchronous,
            busy_timeout=c.busy_timeout,
            wal_autocheckpoint=c.wal_autocheckpoint,
        )

    def writer(self) -> JournalWriter:
        pid = os.getpid()
        writer = self._writers.get(pid)
        if writer is None:
            with self._lock:
                writer = self._writers.get(pid)
                if writer is None:
                    writer = JournalWriter(
                        self.open_store,
                        batch_size=self.config.batch_size,
                        flush_interval=self.config.flush_interval,
                        wait_timeout=self.config.commit_wait_timeout,
                    )
                    self._writers[pid] = writer
        return writer

    def _record(self, kind: str, event: TaskEvent, *, last: bool) -> None:
        if self.hostname is None and event.worker:
            self.hostname = event.worker
        wait = last and self.config.commit_before_ack
        self.writer().submit(row_from_event(kind, event), wait=wait)

    def received(self, event: TaskEvent) -> None:
        self._record("received", event, last=False)

    def started(self, event: TaskEvent) -> None:
        self._record("started", event, last=False)

    def retried(self, event: TaskEvent) -> None:
        self._record("retried", event, last=True)

    def succeeded(self, event: TaskEvent) -> None:
        self._record("succeeded", event, last=True)

    def failed(self, event: TaskEvent) -> None:
        self._record("failed", event, last=True)

    def flush(self, timeout: float = 5.0) -> bool:
        writer = self._writers.get(os.getpid())
        return writer.flush(timeout) if writer is not None else True

    def close(self) -> None:
        """Commit and close this process's writer (other processes' are not ours to touch)."""
        writer = self._writers.pop(os.getpid(), None)
        if writer is not None:
            writer.close()


def worker_journal(app: Celery, settings: Settings) -> JournalHooks | None:
    """The journal hooks for a `growbin worker`, wired to the worker's life; None when off."""
    config = settings.journal
    if not config.enabled:
        return None
    hooks = JournalHooks(config)
    _Lifecycle(app, settings, hooks).connect()
    return hooks


class _Lifecycle:
    def __init__(self, app: Celery, settings: Settings, hooks: JournalHooks) -> None:
        self.app = app
        self.settings = settings
        self.hooks = hooks
        self.maintenance: Any = None

    def connect(self) -> None:
        signals.celeryd_after_setup.connect(self._named, weak=False)
        signals.worker_ready.connect(self._ready, weak=False)
        signals.worker_process_shutdown.connect(self._child_exit, weak=False)
        signals.worker_shutdown.connect(self._shutdown, weak=False)

    def _named(self, sender: Any = None, instance: Any = None, **_: Any) -> None:
        # before the pool forks: every child inherits the name, so all use one file
        if getattr(instance, "app", None) is self.app and sender:
            self.hooks.hostname = str(sender)

    def _ready(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not self.app:
            return
        from growbin.journal.maintenance import JournalMaintenance

        hostname = self.hooks.hostname or getattr(sender, "hostname", None)
        self.hooks.hostname = hostname
        self.maintenance = JournalMaintenance(self.settings, self.hooks.config, hostname)
        self.maintenance.start()

    def _child_exit(self, **_: Any) -> None:
        self.hooks.close()

    def _shutdown(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not self.app:
            return
        self.hooks.close()
        if self.maintenance is not None:
            self.maintenance.stop(final_sync=True)
