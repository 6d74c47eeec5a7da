"""Which queue the dead-letter tools read, which record states each command acts on, and which
dead letters a replay refuses."""

from __future__ import annotations

from growbin.db.models import DeadLetterRecord, DeadLetterState
from growbin.ops.deadletters.errors import DeadLetterError
from growbin.ops.deadletters.view import exception_line
from growbin.runtime.deadletter import NOT_RUNNABLE
from growbin.topology.model import QueueRole, Topology

# what needs attention: still in the queue, or pushed out of it without a replay
OPEN_STATES = (DeadLetterState.QUEUED, DeadLetterState.DROPPED)
REPLAYABLE_STATES = frozenset({*OPEN_STATES, DeadLetterState.PURGED})


def dead_letter_queue(topology: Topology, name: str | None = None) -> tuple[str, QueueRole]:
    """The queue the tools read: ``name``, or the topology's (first) dead-letter queue."""
    kept = {
        qname: q.role
        for qname, q in topology.queues.items()
        if q.role in (QueueRole.DEAD_LETTER, QueueRole.UNROUTABLE)
    }
    if name is None:
        for qname, role in kept.items():
            if role is QueueRole.DEAD_LETTER:
                return qname, role
        raise DeadLetterError(
            f"topology {topology.name!r} has no queue with `role: dead-letter`: add one "
            "(e.g. q.dlq bound to the dead-letter exchange) or pass --queue-name"
        )
    if name not in kept:
        known = ", ".join(kept) or "(none)"
        raise DeadLetterError(
            f"queue {name!r} is not a dead-letter or unroutable queue of topology "
            f"{topology.name!r}: use one of {known}"
        )
    return name, kept[name]


def not_runnable(record: DeadLetterRecord) -> str | None:
    """Why a replay refuses this dead letter, or None: a message no worker can run (undecodable,
    disallowed content, malformed) would only be dead-lettered again."""
    if record.reason not in NOT_RUNNABLE:
        return None
    short = record.dead_letter_id[:12]
    line = exception_line(record, width=160)
    cause = f" ({line})" if line else ""
    return (
        f"it cannot run: reason {record.reason}{cause}; no worker can run this message, so a "
        f"replay would only dead-letter it again. Read it with `growbin dlq show {short}`, have "
        f"its publisher send a valid task, then close it with `growbin dlq purge {short} --yes`"
    )
