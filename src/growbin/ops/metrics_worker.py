"""Per-worker metrics over HTTP, correct with prefork's several processes.

A prefork worker runs tasks in child processes, each with its own memory, so in-memory
counters would show whichever process answered the scrape. prometheus_client's multiprocess
mode keeps every process's values in mmap files in one directory, and the worker's main process
serves their sum. The mode must be on before any value exists and before the pool forks, which
is why :func:`worker_metrics` runs from ``build_worker_hooks`` (before ``worker_main``):

- a per-worker directory (``<base>/<profile>-<main pid>``) is emptied at start, so a restarted
  worker never adds a previous run's counts;
- the HTTP server starts on Celery's ``worker_init`` in the main process (port 9090 unless
  ``GROWBIN_METRICS_PORT`` says otherwise; 0 turns it off); a port already taken is logged, not
  fatal, since Prometheus's ``up`` shows the missing target;
- a pool process that exits has its live gauges dropped (``mark_process_dead``) and, because a
  killed process never says goodbye, so has any process found dead at scrape time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from celery import Celery, signals
from prometheus_client import CollectorRegistry, start_http_server, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from growbin.ops.metrics import reset_metrics, set_identity, set_worker_progress
from growbin.ops.metrics_config import ALL_INTERFACES, MetricsConfig
from growbin.ops.metrics_hooks import MetricsHooks
from growbin.runtime.progress import (
    ProgressRecord,
    ProgressReporter,
    progress_dir,
    stall_threshold,
)
from growbin.settings import Settings

logger = logging.getLogger("growbin.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def enable_multiprocess(directory: Path) -> None:
    """Empty ``directory`` and keep this process's (and its children's) values there."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    # prometheus_client reads the variable when it opens a process's file, and the pool's
    # children inherit it with the environment.
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    reset_metrics()


class LiveMultiProcessCollector(Collector):
    """The sum over a directory's process files, after dropping dead processes' live gauges."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._inner = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Any]:
        prune_dead_processes(self.directory)
        families: Iterable[Any] = self._inner.collect()  # type: ignore[no-untyped-call]
        return families


def prune_dead_processes(directory: Path) -> list[int]:
    dead: set[int] = set()
    for path in directory.glob("gauge_live*.db"):
        match = _LIVE_FILE.match(path.name)
        if match and not _alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiprocess_registry(directory: Path) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(LiveMultiProcessCollector(directory))
    return registry


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_metrics_server(
    port: int, *, addr: str = ALL_INTERFACES, registry: CollectorRegistry
) -> MetricsServer:
    """Serve ``registry`` at ``http://addr:port/metrics`` from a daemon thread (port 0: any).

    Raises OSError when the port is taken.
    """
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread)


class WorkerMetrics:
    """The process-lifecycle side of a worker's metrics, tied to Celery's worker signals."""

    def __init__(
        self,
        app: Celery,
        config: MetricsConfig,
        directory: Path,
        progress: Callable[[str], ProgressReporter] | None = None,
    ) -> None:
        self.app = app
        self.config = config
        self.directory = directory
        self.server: MetricsServer | None = None
        self._make_progress = progress
        self.progress: ProgressReporter | None = None

    def connect(self) -> None:
        signals.worker_init.connect(self._on_worker_init, weak=False)
        signals.worker_ready.connect(self._on_worker_ready, weak=False)
        signals.worker_process_init.connect(self._on_child_start, weak=False)
        signals.worker_process_shutdown.connect(self._on_child_exit, weak=False)
        signals.worker_shutdown.connect(self._on_worker_shutdown, weak=False)

    def disconnect(self) -> None:
        signals.worker_init.disconnect(self._on_worker_init)
        signals.worker_ready.disconnect(self._on_worker_ready)
        signals.worker_process_init.disconnect(self._on_child_start)
        signals.worker_process_shutdown.disconnect(self._on_child_exit)
        signals.worker_shutdown.disconnect(self._on_worker_shutdown)

    def _on_worker_init(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not self.app:
            return
        if getattr(sender, "hostname", None):
            set_identity(str(sender.hostname))
        if self.config.port <= 0:
            return
        try:
            self.server = start_metrics_server(
                self.config.port,
                addr=self.config.addr,
                registry=multiprocess_registry(self.directory),
            )
        except OSError as exc:
            logger.error(
                "metrics: cannot listen on %s:%d (%s); this worker runs without its /metrics. "
                "Give each worker on a host its own GROWBIN_METRICS_PORT",
                self.config.addr,
                self.config.port,
                exc,
            )
            return
        logger.info(
            "metrics: serving http://%s:%d/metrics from %s",
            self.config.addr,
            self.server.port,
            self.directory,
        )

    def _on_worker_ready(self, sender: Any = None, **_: Any) -> None:
        # the pool runs by now (prefork children are forked without this thread)
        if getattr(sender, "app", None) is not self.app or self._make_progress is None:
            return
        if self.progress is None:
            self.progress = self._make_progress(str(getattr(sender, "hostname", "") or ""))
            # the sender is the Consumer: its connection and queues go into each record
            self.progress.attach_consumer(sender)
            self.progress.start()

    def _on_child_start(self, **_: Any) -> None:
        # The child inherited the listening socket; only the main process may answer on it.
        if self.server is not None:
            with contextlib.suppress(OSError):
                self.server.server.socket.close()
            self.server = None

    def _on_child_exit(self, pid: int | None = None, **_: Any) -> None:
        with contextlib.suppress(OSError):
            mark_process_dead(pid or os.getpid(), str(self.directory))  # type: ignore[no-untyped-call]

    def _on_worker_shutdown(self, sender: Any = None, **_: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.server is not None:
            self.server.close()
            self.server = None
        shutil.rmtree(self.directory, ignore_errors=True)


def worker_metrics(
    app: Celery, settings: Settings, profile: str, config: MetricsConfig | None = None
) -> MetricsHooks:
    """Turn on multiprocess metrics for this worker and return its task-metrics hooks.

    Call in the worker's main process before the pool starts (``build_worker_hooks``).
    """
    config = config or MetricsConfig.resolve(settings)
    directory = config.directory(profile, os.getpid())
    enable_multiprocess(directory)
    WorkerMetrics(app, config, directory, progress_reporter(app, settings, profile)).connect()
    return MetricsHooks.for_app(app)


def progress_reporter(
    app: Celery, settings: Settings, profile: str
) -> Callable[[str], ProgressReporter]:
    """Makes the worker's progress reporter (growbin.runtime.progress) once its hostname is
    known; every sample also sets the growbin_worker_* gauges."""
    from growbin.runtime.task_base import topology_of

    declared = topology_of(app).profiles.get(profile)
    stall_after = stall_threshold(
        settings.worker_stall_after, declared.time_limit if declared else None
    )

    def on_record(record: ProgressRecord) -> None:
        set_worker_progress(
            record.worker, record.reserved, record.without_progress(), record.stalled()
        )

    def make(hostname: str) -> ProgressReporter:
        return ProgressReporter(
            worker=hostname or f"{profile}@{os.uname().nodename}",
            profile=profile,
            stall_after=stall_after,
            directory=progress_dir(settings.worker_progress_dir),
            redis_url=settings.redis_url.get_secret_value(),
            on_record=on_record,
        )

    return make
