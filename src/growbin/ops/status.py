"""`growbin status`: queues, dead letters and worker profiles on one screen.

Every figure comes from the system that owns it: depth, consumers and rates from RabbitMQ's
management API (its statistics lag up to 5 s), dead letters by reason from the PostgreSQL
archive (or, when the database is unreachable, q.dlq's depth with the reason unknown), and the
workers online from a Celery ``active_queues`` broadcast, grouped by the hostname's
``PROFILE@`` prefix, and whether each profile's workers make progress from the records they
publish in Redis (:mod:`growbin.runtime.progress`; "unknown" when Redis does not answer).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from growbin.errors import GrowbinError, ServiceUnavailableError
from growbin.runtime.progress import ProgressRecord, read_progress_records
from growbin.settings import Settings, mask_url
from growbin.topology.broker_api import BrokerApi
from growbin.topology.model import QueueRole, Topology

INSPECT_TIMEOUT = 1.0


@dataclass(frozen=True)
class QueueStatus:
    name: str
    role: str
    messages: int | None
    ready: int | None
    unacked: int | None
    consumers: int | None
    publish_rate: float | None
    deliver_rate: float | None
    ack_rate: float | None
    alert_depth: int | None
    exists: bool = True

    @property
    def over_alert(self) -> bool:
        return self.alert_depth is not None and (self.messages or 0) > self.alert_depth


class Progress:
    """A profile's progress: every reporting worker makes progress, one is stalled, or no
    record could be read (Redis down) or none was published."""

    OK = "ok"
    STALLED = "stalled"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StalledWorker:
    worker: str
    reserved: int
    active: int
    seconds: float  # without progress
    threshold: float


@dataclass(frozen=True)
class ProfileStatus:
    profile: str
    expected: int  # replicas in the topology; 0 for a profile the topology does not name
    hosts: list[str]
    queues: list[str]
    progress: str = Progress.UNKNOWN
    stalled: list[StalledWorker] = field(default_factory=list)


@dataclass
class Snapshot:
    topology: str
    vhost: str
    queues: list[QueueStatus]
    dead_letters: dict[str, int]
    dead_letter_source: str  # "archive", "queue" or "unavailable"
    profiles: list[ProfileStatus]
    notes: list[str] = field(default_factory=list)
    taken_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for queue, row in zip(self.queues, data["queues"], strict=True):
            row["over_alert"] = queue.over_alert
        return data


class StatsApi(BrokerApi):
    """The management API's queue list with message rates (plan/apply never need them)."""

    def queue_details(self, vhost: str) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/queues/{quote(vhost, safe='')}"))


def _rate(stats: dict[str, Any], name: str) -> float | None:
    value = (stats.get(f"{name}_details") or {}).get("rate")
    return float(value) if isinstance(value, int | float) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def queue_statuses(api: StatsApi, topology: Topology) -> list[QueueStatus]:
    live = {str(q["name"]): q for q in api.queue_details(topology.vhost)}
    rows = []
    for name, queue in topology.queues.items():
        data = live.get(name)
        stats = (data or {}).get("message_stats") or {}
        rows.append(
            QueueStatus(
                name=name,
                role=queue.role.value,
                messages=_int((data or {}).get("messages")),
                ready=_int((data or {}).get("messages_ready")),
                unacked=_int((data or {}).get("messages_unacknowledged")),
                consumers=_int((data or {}).get("consumers")),
                publish_rate=_rate(stats, "publish"),
                deliver_rate=_rate(stats, "deliver_get"),
                ack_rate=_rate(stats, "ack"),
                alert_depth=queue.alert_depth,
                exists=data is not None,
            )
        )
    return rows


def dead_letters_by_reason(
    settings: Settings, topology: Topology, queues: list[QueueStatus]
) -> tuple[dict[str, int], str, str | None]:
    """(counts by reason, source, note): the archive's open dead letters, else q.dlq's depth."""
    from sqlalchemy.exc import SQLAlchemyError

    dlqs = [n for n, q in topology.queues.items() if q.role is QueueRole.DEAD_LETTER]
    try:
        counts = _archive_reasons(settings, topology.vhost, dlqs)
    except (ServiceUnavailableError, SQLAlchemyError) as exc:  # a bug here must not hide
        depth = sum(q.messages or 0 for q in queues if q.name in dlqs)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"unknown": depth}, "queue", f"dead-letter archive unavailable ({reason})"
    return counts, "archive", None


def _archive_reasons(settings: Settings, vhost: str, dlqs: list[str]) -> dict[str, int]:
    from sqlalchemy import func, select

    from growbin.db.engine import make_engine, translate_errors
    from growbin.db.models import DeadLetterRecord as R
    from growbin.ops.metrics_cluster import OPEN_STATES

    engine = make_engine(settings)
    query = (
        select(R.reason, func.count())
        .where(R.vhost == vhost, R.dead_letter_queue.in_(dlqs), R.state.in_(OPEN_STATES))
        .group_by(R.reason)
        .order_by(func.count().desc())
    )
    try:
        with translate_errors(engine), engine.connect() as conn:
            return {str(reason): int(n) for reason, n in conn.execute(query)}
    finally:
        engine.dispose()


def worker_profiles(
    settings: Settings, topology: Topology, timeout: float = INSPECT_TIMEOUT
) -> tuple[list[ProfileStatus], list[str]]:
    """Profiles with the hosts that answered a broadcast within ``timeout`` seconds, and
    their progress."""
    from celery import Celery

    app = Celery(
        "growbin-status", broker=settings.broker_url.get_secret_value(), set_as_current=False
    )
    app.conf.broker_connection_timeout = settings.broker_connect_timeout
    note = None
    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:
        replies, note = {}, f"worker broadcast failed ({type(exc).__name__}: {exc})"
    finally:
        app.close()
    records, progress_note = worker_progress(settings)
    notes = [n for n in (note, progress_note) if n]
    return group_profiles(replies, topology, records), notes


def worker_progress(settings: Settings) -> tuple[list[ProgressRecord] | None, str | None]:
    """Every live worker's progress record from Redis; None (and a note) when Redis fails."""
    import redis

    url = settings.redis_url.get_secret_value()
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return read_progress_records(client), None
    except redis.RedisError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = mask_url(url)
        return None, f"worker progress unknown: Redis is not reachable at {where} ({reason})"
    finally:
        client.close()


def _progress_of(
    profile: str, records: list[ProgressRecord] | None, now: float
) -> tuple[str, list[StalledWorker]]:
    if records is None:
        return Progress.UNKNOWN, []
    mine = [r for r in records if r.profile == profile]
    stalled = [
        StalledWorker(r.worker, r.reserved, r.active, round(r.without_progress(now)), r.stall_after)
        for r in mine
        if r.stalled(now)
    ]
    if stalled:
        return Progress.STALLED, stalled
    return (Progress.OK if mine else Progress.UNKNOWN), []


def group_profiles(
    replies: dict[str, Any],
    topology: Topology,
    progress: list[ProgressRecord] | None = None,
    now: float | None = None,
) -> list[ProfileStatus]:
    """Hosts by the ``PROFILE@`` prefix of their Celery hostname; the topology's profiles
    first (those with no host online too), then any the topology does not name. ``progress``:
    the workers' progress records (None: unknown)."""
    now = time.time() if now is None else now
    found: dict[str, tuple[list[str], set[str]]] = {}
    for hostname, consumed in sorted(replies.items()):
        profile = hostname.split("@", 1)[0] if "@" in hostname else hostname
        hosts, queues = found.setdefault(profile, ([], set()))
        hosts.append(hostname)
        queues.update(str(q.get("name")) for q in consumed or [] if isinstance(q, dict))
    profiles = []
    for name in [*topology.profiles, *sorted(set(found) - set(topology.profiles))]:
        hosts, queues = found.get(name, ([], set()))
        declared = topology.profiles.get(name)
        state, stalled = _progress_of(name, progress, now)
        profiles.append(
            ProfileStatus(
                profile=name,
                expected=declared.replicas if declared else 0,
                hosts=hosts,
                queues=sorted(queues) or (list(declared.queues) if declared else []),
                progress=state,
                stalled=stalled,
            )
        )
    return profiles


def take_snapshot(
    settings: Settings, topology: Topology, *, inspect_timeout: float = INSPECT_TIMEOUT
) -> Snapshot:
    api = StatsApi(settings.rabbitmq_api_url.get_secret_value())
    try:
        queues = queue_statuses(api, topology)
    except ServiceUnavailableError as exc:
        raise broker_unreachable(settings, exc) from None
    finally:
        api.close()
    dead, source, dead_note = dead_letters_by_reason(settings, topology, queues)
    profiles, worker_notes = worker_profiles(settings, topology, inspect_timeout)
    return Snapshot(
        topology=topology.name,
        vhost=topology.vhost,
        queues=queues,
        dead_letters=dead,
        dead_letter_source=source,
        profiles=profiles,
        notes=[n for n in (dead_note, *worker_notes) if n],
    )


def broker_unreachable(
    settings: Settings, error: ServiceUnavailableError
) -> ServiceUnavailableError:
    """Name what is down: RabbitMQ itself (AMQP silent too), or only its management API.

    Advice to enable the management plugin fits only when AMQP answers; with the whole broker
    down it would send the operator the wrong way.
    """
    from growbin.topology.verify import broker_reachable

    broker_url = settings.broker_url.get_secret_value()
    if broker_reachable(broker_url, settings.broker_connect_timeout):
        return ServiceUnavailableError(
            error.service,
            error.url,
            "RabbitMQ answers on AMQP but not its management API, which status reads queue "
            "figures from",
            fix="enable it with `rabbitmq-plugins enable rabbitmq_management` and check "
            "GROWBIN_RABBITMQ_API_URL",
        )
    return ServiceUnavailableError(
        "RabbitMQ",
        mask_url(broker_url),
        f"neither AMQP nor the management API ({error.url}) answers",
        fix="start RabbitMQ (or wait until it is up) and check GROWBIN_BROKER_URL and "
        "GROWBIN_RABBITMQ_API_URL",
    )


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _per_second(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _progress(profile: ProfileStatus) -> str:
    if profile.progress != Progress.STALLED:
        return profile.progress if profile.hosts or profile.progress == Progress.OK else "-"
    details = "; ".join(
        f"{w.worker} holds {w.reserved} ({w.active} running), no progress for {w.seconds:.0f} s"
        for w in profile.stalled
    )
    return f"[bold red]stalled[/]: {details}"


def render(snapshot: Snapshot) -> Group:
    when = time.strftime("%H:%M:%S", time.localtime(snapshot.taken_at))
    queues = Table(title=f"queues: topology {snapshot.topology}, vhost {snapshot.vhost} ({when})")
    for column in ("queue", "role", "depth", "ready", "unacked", "consumers"):
        queues.add_column(column, justify="left" if column in ("queue", "role") else "right")
    for column in ("in/s", "out/s", "ack/s", "alert at"):
        queues.add_column(column, justify="right")
    for q in snapshot.queues:
        depth = _num(q.messages) if q.exists else "[red]missing[/]"
        if q.over_alert:
            depth = f"[bold red]{depth}[/]"
        consumers = _num(q.consumers)
        if q.role == QueueRole.WORK.value and q.consumers == 0:
            consumers = f"[yellow]{consumers}[/]"
        queues.add_row(
            q.name,
            q.role,
            depth,
            _num(q.ready),
            _num(q.unacked),
            consumers,
            _per_second(q.publish_rate),
            _per_second(q.deliver_rate),
            _per_second(q.ack_rate),
            _num(q.alert_depth),
        )
    source = {"archive": "PostgreSQL archive, open", "queue": "q.dlq depth, reason unknown"}
    dead = Table(title=f"dead letters ({source.get(snapshot.dead_letter_source, 'unavailable')})")
    dead.add_column("reason")
    dead.add_column("count", justify="right")
    for reason, count in snapshot.dead_letters.items():
        dead.add_row(reason, str(count))
    if not snapshot.dead_letters:
        dead.add_row("(none)", "0")
    workers = Table(title="worker profiles online")
    for column in ("profile", "online", "progress", "hosts", "queues"):
        workers.add_column(column)
    for p in snapshot.profiles:
        online = f"{len(p.hosts)}/{p.expected}" if p.expected else str(len(p.hosts))
        if not p.hosts:
            online = f"[red]{online}[/]"
        workers.add_row(
            p.profile, online, _progress(p), ", ".join(p.hosts) or "-", ", ".join(p.queues)
        )
    notes = [f"[yellow]note:[/] {n}" for n in snapshot.notes]
    return Group(queues, dead, workers, *notes)


def status_command(
    settings: Settings,
    topology: Topology,
    *,
    watch: bool = False,
    interval: float = 2.0,
    fmt: str = "text",
    console: Console | None = None,
    inspect_timeout: float = INSPECT_TIMEOUT,
) -> Snapshot:
    """Print the status once (text or json), or refresh it every ``interval`` s (``watch``).

    Raises ServiceUnavailableError when the management API is unreachable.
    """
    if fmt not in ("text", "json"):
        raise GrowbinError(f"--format {fmt!r} is not known: use text or json")
    out = console or Console()
    snapshot = take_snapshot(settings, topology, inspect_timeout=inspect_timeout)
    if fmt == "json":
        out.print_json(json.dumps(snapshot.to_dict()))
        return snapshot
    if not watch:
        out.print(render(snapshot))
        return snapshot
    with Live(render(snapshot), console=out, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                snapshot = take_snapshot(settings, topology, inspect_timeout=inspect_timeout)
                live.update(render(snapshot), refresh=True)
        except KeyboardInterrupt:
            pass
    return snapshot
