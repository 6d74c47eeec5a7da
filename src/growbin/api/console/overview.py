"""What the overview shows, gathered from the owners of each figure.

Queues, dead letters by reason and worker profiles come from :mod:`growbin.ops.status` (the
same functions as `growbin status`); breakers and rate limits from the guards in Redis; the
beat leader from the scheduler's lock key; dead letters over time from the archive. Each part
that cannot be read becomes a note and the rest is still shown: at 3 a.m. a Redis outage must
not blank the queue table.

A snapshot is kept for ``CACHE_SECONDS`` so that several open consoles polling every few
seconds cost one worker broadcast, not one each.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from growbin.db.engine import translate_errors
from growbin.db.models import DeadLetterRecord
from growbin.errors import GrowbinError, ServiceUnavailableError
from growbin.guard.breaker import BreakerStatus
from growbin.guard.providers import GuardConfig, Guards
from growbin.guard.ratelimit import LimiterState
from growbin.ops import status
from growbin.ops.status import ProfileStatus, Progress, QueueStatus
from growbin.scheduler.lock import LeaderLock
from growbin.settings import Settings, mask_url
from growbin.topology.model import QueueRole, Topology

CACHE_SECONDS = 2.0
HISTORY_HOURS = 24


@dataclass(frozen=True)
class QueueRow:
    status: QueueStatus
    max_length: int | None
    profiles: list[str]
    flags: list[str]  # full, over alert, stalled, no consumers, missing


@dataclass(frozen=True)
class BeatLeader:
    holder: str | None
    seconds_left: float | None  # until the lock expires unless renewed


@dataclass(frozen=True)
class ReasonHistory:
    reason: str
    total: int
    hourly: list[int]  # oldest first, one per hour of the last HISTORY_HOURS


@dataclass
class Overview:
    topology: str
    vhost: str
    queues: list[QueueRow]
    dead_letters: dict[str, int]
    dead_letter_source: str
    history: list[ReasonHistory]
    history_start: datetime
    profiles: list[ProfileStatus]
    breakers: list[BreakerStatus]
    rate_limits: list[LimiterState]
    beat: BeatLeader | None
    notes: list[str] = field(default_factory=list)
    taken_at: float = field(default_factory=time.time)

    @property
    def attention(self) -> int:
        """How many things are wrong: flagged queues, stalled or empty profiles, open breakers."""
        queues = sum(1 for q in self.queues if q.flags)
        profiles = sum(1 for p in self.profiles if p.progress == Progress.STALLED or not p.hosts)
        breakers = sum(1 for b in self.breakers if b.state.value != "closed")
        return queues + profiles + breakers


def queue_flags(
    queue: QueueStatus, max_length: int | None, profiles: list[ProfileStatus]
) -> list[str]:
    """What an operator must look at on this queue, most urgent first."""
    if not queue.exists:
        return ["missing"]
    flags = []
    if max_length is not None and (queue.messages or 0) >= max_length:
        flags.append("full")
    if queue.over_alert:
        flags.append("over alert")
    if any(p.progress == Progress.STALLED for p in profiles if queue.name in p.queues):
        flags.append("stalled")
    if queue.role == QueueRole.WORK.value and queue.consumers == 0:
        flags.append("no consumers")
    return flags


def queue_rows(
    topology: Topology, queues: list[QueueStatus], profiles: list[ProfileStatus]
) -> list[QueueRow]:
    rows = []
    for queue in queues:
        declared = topology.queues.get(queue.name)
        max_length = declared.max_length if declared else None
        rows.append(
            QueueRow(
                status=queue,
                max_length=max_length,
                profiles=topology.profiles_consuming(queue.name),
                flags=queue_flags(queue, max_length, profiles),
            )
        )
    return rows


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _guards(
    settings: Settings, topology: Topology
) -> tuple[list[BreakerStatus], list[LimiterState], str | None]:
    if not topology.breakers and not topology.rate_limits:
        return [], [], None
    url = settings.redis_url.get_secret_value()
    guards = Guards.from_url(url, GuardConfig.from_topology(topology, settings))
    try:
        return guards.breakers.statuses(), guards.limiter.states(), None
    except (GrowbinError, redis.RedisError) as exc:
        return (
            [],
            [],
            f"breakers and rate limits unknown: Redis at {mask_url(url)} ({_first_line(exc)})",
        )
    finally:
        guards.store.close()


def beat_leader(settings: Settings, topology: Topology) -> tuple[BeatLeader | None, str | None]:
    """The scheduler holding the leader lock now (None: no beat leads)."""
    url = settings.redis_url.get_secret_value()
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    namespace = settings.beat.namespace(topology.name, settings.broker_url.get_secret_value())
    lock = LeaderLock(client, namespace, settings.beat.lock_timeout)
    try:
        holder = lock.holder()
        ttl = int(client.pttl(lock.lock_key)) if holder is not None else -2
        left = ttl / 1000 if ttl > 0 else None
        return BeatLeader(holder, left), None
    except redis.RedisError as exc:
        return None, f"beat leader unknown: Redis at {mask_url(url)} ({_first_line(exc)})"
    finally:
        client.close()


def reason_history(
    engine: Engine, topology: Topology, *, now: datetime | None = None
) -> tuple[list[ReasonHistory], datetime]:
    """Dead letters per reason and hour (when they were dead-lettered), every state."""
    now = now or datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=HISTORY_HOURS)
    dlqs = [n for n, q in topology.queues.items() if q.role is QueueRole.DEAD_LETTER]
    query = select(DeadLetterRecord.reason, DeadLetterRecord.dead_lettered_at).where(
        DeadLetterRecord.vhost == topology.vhost,
        DeadLetterRecord.dead_letter_queue.in_(dlqs),
        DeadLetterRecord.dead_lettered_at >= start,
    )
    totals = (
        select(DeadLetterRecord.reason, func.count())
        .where(
            DeadLetterRecord.vhost == topology.vhost,
            DeadLetterRecord.dead_letter_queue.in_(dlqs),
            DeadLetterRecord.dead_lettered_at >= start,
        )
        .group_by(DeadLetterRecord.reason)
    )
    hourly: dict[str, list[int]] = {}
    with translate_errors(engine), engine.connect() as conn:
        counts = {str(reason): int(n) for reason, n in conn.execute(totals)}
        # bucketed here, not in SQL: the same code reads PostgreSQL and the embedded SQLite
        for reason, when in conn.execute(query.limit(100_000)):
            moment = when if when.tzinfo else when.replace(tzinfo=UTC)
            slot = int((moment - start).total_seconds() // 3600)
            if 0 <= slot < HISTORY_HOURS:
                hourly.setdefault(str(reason), [0] * HISTORY_HOURS)[slot] += 1
    rows = [
        ReasonHistory(reason, counts[reason], hourly.get(reason, [0] * HISTORY_HOURS))
        for reason in sorted(counts, key=lambda r: -counts[r])
    ]
    return rows, start


class OverviewSource:
    """Builds overviews for one runtime, reusing one for ``CACHE_SECONDS``."""

    def __init__(self, settings: Settings, topology: Topology, engine: Engine) -> None:
        self.settings = settings
        self.topology = topology
        self.engine = engine
        self._lock = threading.Lock()
        self._last: Overview | None = None

    def get(self) -> Overview:
        with self._lock:
            if self._last is None or time.time() - self._last.taken_at > CACHE_SECONDS:
                self._last = self.take()
            return self._last

    def take(self) -> Overview:
        settings, topology = self.settings, self.topology
        notes: list[str] = []
        api = status.StatsApi(settings.rabbitmq_api_url.get_secret_value(), timeout=3.0)
        try:
            queues = status.queue_statuses(api, topology)
        except ServiceUnavailableError as exc:
            notes.append(str(status.broker_unreachable(settings, exc)))
            queues = []
        finally:
            api.close()
        dead, source, dead_note = status.dead_letters_by_reason(settings, topology, queues)
        profiles, worker_notes = status.worker_profiles(settings, topology)
        breakers, limits, guard_note = _guards(settings, topology)
        beat, beat_note = beat_leader(settings, topology)
        try:
            history, start = reason_history(self.engine, topology)
        except (ServiceUnavailableError, SQLAlchemyError) as exc:
            history, start = [], datetime.now(UTC) - timedelta(hours=HISTORY_HOURS)
            notes.append(f"dead letters over time unknown: {_first_line(exc)}")
        notes += [n for n in (dead_note, *worker_notes, guard_note, beat_note) if n]
        return Overview(
            topology=topology.name,
            vhost=topology.vhost,
            queues=queue_rows(topology, queues, profiles),
            dead_letters=dead,
            dead_letter_source=source,
            history=history,
            history_start=start,
            profiles=profiles,
            breakers=breakers,
            rate_limits=limits,
            beat=beat,
            notes=notes,
        )


def as_context(overview: Overview) -> dict[str, Any]:
    return {"overview": overview, "peak": max((max(h.hourly) for h in overview.history), default=0)}
