"""What the dead-letter commands report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SyncCounts:
    in_queue: int  # messages read from the queue
    new: int  # of which seen for the first time
    dropped: int  # records newly marked dropped
    superseded: int = 0  # records closed because their task id succeeded later
    by_state: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayedItem:
    dead_letter_id: str
    task_name: str
    task_id: str
    exchange: str
    routing_key: str
    from_archive: bool  # the message had left the queue; its archived body was published


@dataclass
class ReplayReport:
    replayed: list[ReplayedItem] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, why)
