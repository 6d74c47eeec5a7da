"""Which queue the dead-letter tools read, and which record states each command acts on."""

from __future__ import annotations

from growbin.db.models import DeadLetterState
from growbin.ops.deadletters.errors import DeadLetterError
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
