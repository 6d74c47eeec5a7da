"""The dead-letter tools: archive q.dlq in PostgreSQL, list, show, replay and purge.

How the queue and the archive stay consistent
---------------------------------------------
The queue is the truth about which dead letters still wait; PostgreSQL is the truth about every
dead letter ever seen, and keeps each one's full message. Every command first *syncs*: it takes
all of the queue's messages unacked (see :mod:`.broker`), upserts a record for each (the id is
stable, so nothing is duplicated), marks queued records it did not see as ``dropped`` (the
queue's drop-head cap or a person removed them; the body is still archived), closes as
``superseded`` the open records whose task id succeeded after all (task_history, synced from
the workers' journals, says so: a held copy was redelivered and ran), commits, and only then
acks the superseded ones' messages: a stale dead letter leaves the queue, its record stays. Then:

- replay publishes each selected message, original body and headers with a fresh retry budget,
  to its original exchange and routing key (or ``to``) and waits for RabbitMQ's confirm; only
  then does it commit the record as ``replayed``, and only after that commit does it ack the
  dead letter. A dropped record is replayed from its archived body.
- purge commits the selected records as ``purged`` first, then acks their messages.
- everything not selected stays unacked and is requeued, in order, when the command ends.

PostgreSQL is always written before the broker is acked. If a command dies between the two,
the message is still in the queue while the record says replayed or purged; the next sync sees
it and sets the record back to ``queued`` (a replay may then run twice: at-least-once, and the
task id is kept for idempotency). Nothing is acked that is not archived, and a replay is never
acked without a confirm, so no path loses a dead letter. A PostgreSQL advisory lock lets one
command at a time hold a queue, so no reader mistakes another's held messages for dropped ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from growbin.db.engine import check_connection, make_engine, session_factory, translate_errors
from growbin.db.models import DeadLetterRecord, DeadLetterState
from growbin.ops.deadletters import store
from growbin.ops.deadletters.broker import DeadLetterQueue, HeldBatch, HeldMessage
from growbin.ops.deadletters.errors import (
    ConfirmationRequiredError,
    DeadLetterError,
    DeadLetterNotFoundError,
    ReplayError,
)
from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.headers import (
    body_bytes,
    replay_headers,
    replay_properties,
    replay_route,
)
from growbin.ops.deadletters.lock import queue_lock
from growbin.ops.deadletters.parse import parse
from growbin.ops.deadletters.results import ReplayedItem, ReplayReport, SyncCounts
from growbin.ops.deadletters.selection import (
    OPEN_STATES,
    REPLAYABLE_STATES,
    dead_letter_queue,
    not_runnable,
)
from growbin.settings import Settings
from growbin.topology.model import QueueRole, Topology

# an alias: inside the class, `list` is the method of that name
Records = list[DeadLetterRecord]


class DeadLetterService:
    """Dead-letter commands on one queue (default: the topology's dead-letter queue)."""

    def __init__(
        self,
        settings: Settings,
        topology: Topology,
        *,
        queue_name: str | None = None,
        engine: Engine | None = None,
        broker_url: str | None = None,
        lock_timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.queue_name, role = dead_letter_queue(topology, queue_name)
        self.unroutable = role is QueueRole.UNROUTABLE
        self._broker_url = broker_url or settings.broker_url.get_secret_value()
        self._owns_engine = engine is None
        self.engine = engine or make_engine(settings)
        self._sessions = session_factory(self.engine)
        self.lock_timeout = lock_timeout
        self.scope = store.Scope(vhost=self._queue().vhost, dead_letter_queue=self.queue_name)

    def __enter__(self) -> DeadLetterService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def sync(self) -> SyncCounts:
        """Archive every message in the queue; mark records whose message left it dropped."""
        with self._work() as work:
            return self._sync(work)

    def list(self, flt: DeadLetterFilter | None = None, *, limit: int | None = None) -> Records:
        """Sync, then the matching records, newest first (default: queued and dropped ones)."""
        self.sync()
        with translate_errors(self.engine), self._sessions() as session:
            return store.list_records(
                session,
                flt or DeadLetterFilter(),
                scope=self.scope,
                default_states=OPEN_STATES,
                limit=limit,
            )

    def show(self, dead_letter_id: str) -> DeadLetterRecord:
        """One record by id (or a unique 6+ character prefix), syncing first if unknown."""
        with translate_errors(self.engine), self._sessions() as session:
            try:
                return store.find(session, dead_letter_id)
            except DeadLetterNotFoundError:
                pass
        self.sync()
        with translate_errors(self.engine), self._sessions() as session:
            return store.find(session, dead_letter_id)

    def replay(
        self,
        ids: Sequence[str] = (),
        *,
        flt: DeadLetterFilter | None = None,
        replay_all: bool = False,
        to: str | None = None,
    ) -> ReplayReport:
        """Publish dead letters back with a fresh retry budget; see the module docstring.

        Select by ``ids`` (any state but replayed and superseded), by ``flt`` (default states
        queued and dropped) or ``replay_all`` (every queued and dropped one); exactly one of the
        three. A chosen record that is replayed or superseded is skipped with the reason.
        """
        chosen = sum((bool(ids), flt is not None and not flt.is_empty(), replay_all))
        if chosen != 1:
            raise DeadLetterError(
                "say which dead letters to replay: ids, filters (--task, --reason, ...) or "
                "--all; exactly one of the three"
            )
        report = ReplayReport()
        with self._work() as work:
            self._sync(work)
            for record in self._replay_targets(work.session, ids, flt, report):
                try:
                    self._replay_one(work, record, to, report)
                except ReplayError as error:
                    done = len(report.replayed)
                    raise ReplayError(
                        f"{error} (dead letter {record.dead_letter_id}, kept in "
                        f"{self.queue_name}; {done} replayed before it, the rest were not "
                        "touched)"
                    ) from error
        return report

    def purge(
        self, flt: DeadLetterFilter | None = None, *, ids: Sequence[str] = (), confirm: bool
    ) -> int:
        """Remove the matching dead letters from the queue, archived as purged; return how many.

        Default selection: every queued and dropped record (a dropped one has no message left;
        purging it only closes it). Refuses unless ``confirm``.
        """
        selection = flt or DeadLetterFilter()
        with self._work() as work:
            self._sync(work)
            targets = self._purge_targets(work.session, selection, ids)
            if not confirm:
                in_queue = sum(1 for r in targets if r.dead_letter_id in work.held)
                raise ConfirmationRequiredError(
                    f"purge would close {len(targets)} dead letter(s) ({selection.describe()}), "
                    f"removing {in_queue} message(s) from {self.queue_name}; the records stay "
                    "archived in PostgreSQL. Add --yes to purge them"
                )
            if not targets:
                return 0
            chosen = [r.dead_letter_id for r in targets]
            store.mark_purged(work.session, chosen)
            work.session.commit()  # archived as purged before anything leaves the queue
            for dead_letter_id in chosen:
                for message in work.held.get(dead_letter_id, []):
                    work.batch.ack(message)
            return len(chosen)

    def _replay_targets(
        self,
        session: Session,
        ids: Sequence[str],
        flt: DeadLetterFilter | None,
        report: ReplayReport,
    ) -> Records:
        if ids:
            chosen = [store.find(session, ident, self.scope) for ident in dict.fromkeys(ids)]
        else:
            # without a --state filter only open records are chosen: a superseded or replayed
            # one is reported only when it was asked for
            chosen = store.list_records(
                session, flt or DeadLetterFilter(), scope=self.scope, default_states=OPEN_STATES
            )
        targets: Records = []
        for record in chosen:
            if DeadLetterState(record.state) not in REPLAYABLE_STATES:
                report.skipped.append((record.dead_letter_id, refusal(record)))
            elif record not in targets:
                targets.append(record)
        return targets

    def _purge_targets(
        self, session: Session, flt: DeadLetterFilter, ids: Sequence[str]
    ) -> Records:
        if ids:
            records = [store.find(session, ident, self.scope) for ident in dict.fromkeys(ids)]
            return [r for r in records if DeadLetterState(r.state) in OPEN_STATES]
        return store.list_records(session, flt, scope=self.scope, default_states=OPEN_STATES)

    def _replay_one(
        self, work: _Work, record: DeadLetterRecord, to: str | None, report: ReplayReport
    ) -> None:
        cannot_run = not_runnable(record)
        if cannot_run is not None:
            report.skipped.append((record.dead_letter_id, cannot_run))
            return
        exchange, routing_key = replay_route(to, record.exchange, record.routing_key)
        if not exchange and not routing_key:
            report.skipped.append(
                (record.dead_letter_id, "its original route is unknown: give one with --to")
            )
            return
        held = work.held.get(record.dead_letter_id, [])
        if held:
            for message in held:
                work.queue.publish(
                    exchange,
                    routing_key,
                    message.raw.body,
                    replay_headers(message.raw.headers),
                    replay_properties(message.raw.properties),
                )
        else:
            work.queue.publish(
                exchange,
                routing_key,
                body_bytes(record.body, record.body_base64),
                replay_headers(record.headers),
                replay_properties(record.properties),
            )
        store.mark_replayed(work.session, [record.dead_letter_id], to=f"{exchange}:{routing_key}")
        work.session.commit()  # recorded before the ack: a lost ack is healed by the next sync
        for message in held:
            work.batch.ack(message)
        report.replayed.append(
            ReplayedItem(
                dead_letter_id=record.dead_letter_id,
                task_name=record.task_name,
                task_id=record.task_id,
                exchange=exchange,
                routing_key=routing_key,
                from_archive=not held,
            )
        )

    def _sync(self, work: _Work) -> SyncCounts:
        letters = [
            parse(m.raw, dead_letter_queue=self.queue_name, unroutable=self.unroutable)
            for m in work.batch.messages
        ]
        for letter, message in zip(letters, work.batch.messages, strict=True):
            # two copies of one message share an id; both are acted on
            work.held.setdefault(letter.dead_letter_id, []).append(message)
        seen_at = datetime.now(UTC)
        session = work.session
        new = store.upsert(session, letters, vhost=self.scope.vhost, seen_at=seen_at)
        dropped = store.mark_dropped(session, self.scope, seen_at=seen_at)
        superseded = store.mark_superseded(session, self.scope, at=seen_at)
        session.commit()
        # archived as superseded before the stale message leaves the queue; a lost ack is
        # healed by the next sync (the message is seen again, and superseded again)
        for dead_letter_id in superseded:
            for message in work.held.pop(dead_letter_id, []):
                work.batch.ack(message)
        return SyncCounts(
            in_queue=len(letters),
            new=new,
            dropped=dropped,
            superseded=len(superseded),
            by_state=store.count_by_state(session, self.scope),
        )

    def _queue(self) -> DeadLetterQueue:
        return DeadLetterQueue(
            self._broker_url,
            self.queue_name,
            connect_timeout=self.settings.broker_connect_timeout,
            confirm_timeout=self.settings.publish_confirm_timeout,
        )

    @contextmanager
    def _work(self) -> Iterator[_Work]:
        """Lock the queue, take its messages and open a session; undo all of it on exit.

        On exit the session closes, then the channel (requeueing what was not acked), then the
        connection, and only then the lock.
        """
        check_connection(self.engine)  # PostgreSQL first: fail before any message is taken
        with (
            translate_errors(self.engine),
            queue_lock(self.engine, self.scope.vhost, self.queue_name, timeout=self.lock_timeout),
            self._queue() as queue,
            queue.hold() as batch,
            self._sessions() as session,
        ):
            yield _Work(session=session, batch=batch, queue=queue)


def refusal(record: DeadLetterRecord) -> str:
    """Why a record is not replayed: it was replayed already, or its task succeeded since."""
    if record.state == DeadLetterState.SUPERSEDED.value:
        when = _utc(record.superseded_at)
        return (
            f"superseded: task {record.task_id} succeeded after it was dead-lettered "
            f"({record.superseded_by or 'task_history'}{f' at {when}' if when else ''}); "
            "replaying it would run it a second time. If it must run again, send a new task"
        )
    if record.state == DeadLetterState.REPLAYED.value:
        return (
            f"already replayed at {_utc(record.last_replayed_at)} to {record.last_replayed_to}; "
            "if it failed again, its new dead letter has a new id"
        )
    return f"its state is {record.state}: only queued, dropped and purged ones are replayed"


def _utc(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z" if moment is not None else ""


@dataclass
class _Work:
    session: Session
    batch: HeldBatch
    queue: DeadLetterQueue
    held: dict[str, list[HeldMessage]] = field(default_factory=dict)  # by dead-letter id
