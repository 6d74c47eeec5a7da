"""Is a worker making progress? Its main process says so, every few seconds, in two places.

A worker can look healthy (online, answering broadcasts) while it holds prefetched messages it
will never run: a request whose outcome was never settled keeps its prefetch slot, and once all
slots are taken the worker receives nothing more. What tells it apart from a busy worker is
progress: a busy worker finishes or starts a task now and then; a stalled one does neither while
it holds reserved messages.

The worker's main process (where Celery keeps its reserved and active requests, for every pool)
samples them every ``INTERVAL`` seconds. Progress is a reserved request that went away
(finished, acked, rejected) or a request the pool accepted; a worker holding nothing is never
stalled. A worker is *stalled* once it has held reserved messages without progress for longer
than its stall threshold: by default its profile's hard time limit plus a minute, since by
then the pool must have finished or killed every task it was running.

Each sample is published twice, as one :class:`ProgressRecord`:

- a JSON file per worker (``<dir>/<hostname>.json``, replaced atomically): for a probe on the
  same host (a Kubernetes exec probe), which must not depend on Redis or the broker to decide
  whether this worker is stuck;
- a Redis key per worker with a TTL of a few intervals (``growbin:workers:progress:<hostname>``):
  for `growbin status`, which reads every worker's record from anywhere; an expired key is a
  worker that stopped reporting. A Redis outage only skips the Redis copy.

and as the metrics ``growbin_worker_reserved_tasks``, ``growbin_worker_seconds_without_progress``
and ``growbin_worker_stalled`` (alert ``WorkerStalled``).

The record also says whether the worker's consumer is connected to the broker and which of
its selected queues it consumes right now, so that one file answers a readiness probe
(:func:`probe`, ``growbin worker probe``): connected, consuming every queue of its profile,
not stalled, and written recently by a process that still exists. No broadcast, no broker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("growbin.progress")

INTERVAL = 5.0  # seconds between samples
REDIS_PREFIX = "growbin:workers:progress:"
TTL_INTERVALS = 4  # a record outlives a few missed samples, not a dead worker
DEFAULT_STALL_AFTER = 600.0  # a profile with no hard time limit
STALL_MARGIN = 60.0


def stall_threshold(configured: float | None, time_limit: float | None) -> float:
    """Seconds without progress before a worker holding reserved messages counts as stalled."""
    if configured is not None:
        return float(configured)
    return float(time_limit if time_limit is not None else DEFAULT_STALL_AFTER) + STALL_MARGIN


@dataclass(frozen=True)
class ProgressRecord:
    worker: str  # the Celery hostname, PROFILE@host
    profile: str
    pid: int
    reserved: int  # messages the worker holds (prefetched or running)
    active: int  # of which the pool is running
    last_progress: float  # epoch seconds
    stall_after: float
    updated_at: float  # epoch seconds
    # The consumer's view; None in a record from a worker that did not report it.
    connected: bool | None = None
    queues: tuple[str, ...] = ()  # the queues the worker was started to consume
    consuming: tuple[str, ...] = ()  # of which it consumes now

    def without_progress(self, now: float | None = None) -> float:
        """Seconds the worker has held reserved messages without progress (0 when idle)."""
        if self.reserved <= 0:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self.last_progress)

    def stalled(self, now: float | None = None) -> bool:
        return self.without_progress(now) > self.stall_after

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ProgressRecord:
        data = json.loads(text)
        return cls(
            worker=str(data["worker"]),
            profile=str(data["profile"]),
            pid=int(data["pid"]),
            reserved=int(data["reserved"]),
            active=int(data["active"]),
            last_progress=float(data["last_progress"]),
            stall_after=float(data["stall_after"]),
            updated_at=float(data["updated_at"]),
            connected=None if data.get("connected") is None else bool(data["connected"]),
            queues=tuple(str(q) for q in data.get("queues") or ()),
            consuming=tuple(str(q) for q in data.get("consuming") or ()),
        )

    def age(self, now: float | None = None) -> float:
        """Seconds since the worker wrote this record."""
        return max(0.0, (time.time() if now is None else now) - self.updated_at)


class ProgressTracker:
    """Turns samples of (reserved ids, accepted count) into a last-progress time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._reserved: frozenset[str] = frozenset()
        self._accepted = 0
        self.last_progress = clock()

    def sample(self, reserved: Iterable[str], accepted: int) -> float:
        """Record a sample; returns the time of the last progress."""
        now = self.clock()
        current = frozenset(reserved)
        # idle, a held message went away, or the pool took a new one: all progress
        if not current or (self._reserved - current) or accepted != self._accepted:
            self.last_progress = now
        self._reserved, self._accepted = current, accepted
        return self.last_progress


def progress_dir(configured: str | None) -> Path:
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "growbin-workers"


def progress_file(directory: Path, worker: str) -> Path:
    return directory / f"{worker.replace('/', '_')}.json"


def read_progress_file(path: Path) -> ProgressRecord | None:
    """The record a worker on this host last wrote there; None when there is none."""
    try:
        return ProgressRecord.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_progress_file(path: Path, record: ProgressRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".progress-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(record.to_json())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_progress_records(client: Any) -> list[ProgressRecord]:
    """Every live worker's record in Redis (``client``: a redis.Redis). Raises on Redis errors."""
    keys = sorted(client.scan_iter(match=f"{REDIS_PREFIX}*", count=500))
    if not keys:
        return []
    records = []
    for raw in client.mget(keys):
        if raw is None:
            continue  # expired between SCAN and MGET
        with contextlib.suppress(ValueError, KeyError, TypeError):
            records.append(ProgressRecord.from_json(raw))
    return records


def celery_sample() -> tuple[list[str], int, int]:
    """(reserved request ids, active count, accepted count) from Celery's worker state."""
    from celery.worker import state

    reserved = [str(r.id) for r in list(state.reserved_requests)]
    return reserved, len(list(state.active_requests)), int(state.all_total_count[0])


ConsumerSample = tuple[bool | None, list[str], list[str]]


def consumer_sample(consumer: Any) -> ConsumerSample:
    """(connected, selected queues, queues consumed now) of a Celery worker's Consumer.

    Reads attributes only (no network): Celery replaces ``connection`` and ``task_consumer``
    while it reconnects, and kombu's ``consuming_from`` says whether a queue's consumer tag is
    live (a queue cancelled by `celery control cancel_consumer` is not).
    """
    if consumer is None:
        return None, [], []
    connection = getattr(consumer, "connection", None)
    connected = bool(connection is not None and connection.connected)
    selected = sorted(consumer.app.amqp.queues.consume_from or {})
    task_consumer = getattr(consumer, "task_consumer", None)
    consuming = (
        [name for name in selected if task_consumer.consuming_from(name)]
        if connected and task_consumer is not None
        else []
    )
    return connected, selected, consuming


# A record older than this many samples comes from a worker that stopped reporting.
PROBE_MAX_AGE_INTERVALS = 3


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    reason: str


def probe(
    record: ProgressRecord | None,
    *,
    path: Path,
    now: float | None = None,
    max_age: float = INTERVAL * PROBE_MAX_AGE_INTERVALS,
    alive: Callable[[int], bool] | None = None,
) -> ProbeResult:
    """Is the worker that writes ``path`` ready: recent, alive, connected, consuming, moving?"""
    now = time.time() if now is None else now
    if record is None:
        return ProbeResult(
            False,
            f"no progress record at {path}: the worker has not started (or not finished "
            "starting), or writes elsewhere (GROWBIN_WORKER_PROGRESS_DIR, --hostname)",
        )
    who = record.worker
    if record.age(now) > max_age:
        return ProbeResult(
            False,
            f"{who}: its record is {record.age(now):.0f} s old (limit {max_age:g} s): the "
            "worker stopped reporting (stopped, hung or killed)",
        )
    if alive is not None and not alive(record.pid):
        return ProbeResult(False, f"{who}: its process {record.pid} no longer exists")
    if record.connected is None:
        return ProbeResult(False, f"{who}: its record does not say whether it is connected")
    if not record.connected:
        return ProbeResult(False, f"{who}: not connected to the broker (reconnecting)")
    missing = [q for q in record.queues if q not in record.consuming]
    if not record.queues or missing:
        return ProbeResult(False, f"{who}: not consuming {', '.join(missing) or 'any queue'}")
    if record.stalled(now):
        return ProbeResult(
            False,
            f"{who}: stalled: holds {record.reserved} message(s) without progress for "
            f"{record.without_progress(now):.0f} s (threshold {record.stall_after:g} s)",
        )
    return ProbeResult(
        True,
        f"{who}: connected, consuming {', '.join(record.consuming)}, {record.reserved} "
        f"reserved, {record.active} running, record {record.age(now):.0f} s old",
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProgressReporter:
    """The worker's main process samples and publishes its progress from a daemon thread."""

    def __init__(
        self,
        *,
        worker: str,
        profile: str,
        stall_after: float,
        directory: Path,
        redis_url: str | None,
        interval: float = INTERVAL,
        sample: Callable[[], tuple[list[str], int, int]] = celery_sample,
        on_record: Callable[[ProgressRecord], None] | None = None,
        consumer: Callable[[], ConsumerSample] | None = None,
    ) -> None:
        self.worker = worker
        self.profile = profile
        self.stall_after = stall_after
        self.path = progress_file(directory, worker)
        self.redis_url = redis_url
        self.interval = interval
        self._sample = sample
        self._on_record = on_record
        self._consumer = consumer
        self.tracker = ProgressTracker()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._redis_failing = False

    def attach_consumer(self, consumer: Any) -> None:
        """Report the connection and queues of this Celery Consumer (the worker_ready sender)."""
        self._consumer = lambda: consumer_sample(consumer)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="growbin-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        with contextlib.suppress(OSError):
            self.path.unlink()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.delete(REDIS_PREFIX + self.worker)
                self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.report()
            except Exception:
                logger.exception("worker progress: a sample failed (ignored)")
            self._stop.wait(self.interval)

    def report(self) -> ProgressRecord:
        reserved, active, accepted = self._sample()
        last = self.tracker.sample(reserved, accepted)
        connected, queues, consuming = self._consumer() if self._consumer else (None, [], [])
        record = ProgressRecord(
            worker=self.worker,
            profile=self.profile,
            pid=os.getpid(),
            reserved=len(reserved),
            active=active,
            last_progress=last,
            stall_after=self.stall_after,
            updated_at=time.time(),
            connected=connected,
            queues=tuple(queues),
            consuming=tuple(consuming),
        )
        try:
            write_progress_file(self.path, record)
        except OSError as exc:
            logger.warning("worker progress: cannot write %s (%s)", self.path, exc)
        self._publish(record)
        if self._on_record is not None:
            self._on_record(record)
        if record.stalled():
            logger.error(
                "worker %s is stalled: it holds %d message(s) (%d running) and has made no "
                "progress for %.0f s (threshold %.0f s); see `growbin status`",
                self.worker,
                record.reserved,
                record.active,
                record.without_progress(),
                self.stall_after,
            )
        return record

    def _publish(self, record: ProgressRecord) -> None:
        if not self.redis_url:
            return
        import redis

        try:
            if self._client is None:
                self._client = redis.Redis.from_url(
                    self.redis_url, socket_connect_timeout=2, socket_timeout=2
                )
            ttl = max(1, int(self.interval * TTL_INTERVALS))
            self._client.set(REDIS_PREFIX + self.worker, record.to_json(), ex=ttl)
        except redis.RedisError as exc:
            if not self._redis_failing:
                logger.warning(
                    "worker progress: cannot publish to Redis (%s); `growbin status` shows this "
                    "worker's progress as unknown until Redis answers",
                    type(exc).__name__,
                )
            self._redis_failing = True
            return
        if self._redis_failing:
            logger.info("worker progress: publishing to Redis again")
        self._redis_failing = False
