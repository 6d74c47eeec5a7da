"""What a plan is made of: each change to bring the broker in line, and how it reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ChangeKind(StrEnum):
    CREATE = "create"
    BIND = "bind"
    UPDATE_POLICY = "update-policy"
    DELETE_POLICY = "delete-policy"
    UNBIND = "unbind"  # a live binding the topology does not declare (it changes routing)
    UNCHANGED = "unchanged"
    NEEDS_MIGRATION = "needs-migration"
    OVERRIDDEN = "overridden"  # a foreign policy of higher priority hides ours: manual fix
    EXTRA = "extra"  # a live object outside the topology; reported, left alone


APPLIED_KINDS = frozenset(
    {
        ChangeKind.CREATE,
        ChangeKind.BIND,
        ChangeKind.UNBIND,
        ChangeKind.UPDATE_POLICY,
        ChangeKind.DELETE_POLICY,
    }
)
# what makes the live vhost differ from the topology: apply's work plus what needs a person
DRIFT_KINDS = APPLIED_KINDS | {ChangeKind.NEEDS_MIGRATION, ChangeKind.OVERRIDDEN}


_SUMMARY = {
    ChangeKind.CREATE: "to create",
    ChangeKind.BIND: "to bind",
    ChangeKind.UPDATE_POLICY: "policy updates",
    ChangeKind.DELETE_POLICY: "policy deletions",
    ChangeKind.UNBIND: "bindings to remove",
    ChangeKind.UNCHANGED: "unchanged",
    ChangeKind.NEEDS_MIGRATION: "need a manual migration",
    ChangeKind.OVERRIDDEN: "policies overridden by another policy",
    ChangeKind.EXTRA: "not in the topology (left alone)",
}


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    object_type: str  # vhost, exchange, queue, binding, policy
    name: str
    detail: str = ""
    steps: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # the queues and exchanges this change concerns, to tell who depends on it
    about: frozenset[str] = frozenset()

    @property
    def is_drift(self) -> bool:
        return self.kind in DRIFT_KINDS

    def render(self) -> list[str]:
        lines = [self._headline()]
        lines += [f"    {i}. {step}" for i, step in enumerate(self.steps, start=1)]
        lines += [f"    note: {note}" for note in self.notes]
        return lines

    def _headline(self) -> str:
        suffix = f" ({self.detail})" if self.detail else ""
        match self.kind:
            case ChangeKind.CREATE:
                return f"+ create {self.object_type} {self.name}{suffix}"
            case ChangeKind.BIND:
                return f"+ bind {self.name}{suffix}"
            case ChangeKind.UPDATE_POLICY:
                return f"~ policy {self.name}: {self.detail}"
            case ChangeKind.DELETE_POLICY:
                return f"- delete policy {self.name}{suffix}"
            case ChangeKind.UNBIND:
                return f"- unbind {self.name}{suffix}"
            case ChangeKind.OVERRIDDEN:
                return f"! policy {self.name} is overridden: {self.detail}"
            case ChangeKind.NEEDS_MIGRATION:
                return f"! {self.object_type} {self.name} needs migration: {self.detail}"
            case ChangeKind.EXTRA:
                return f"? {self.object_type} {self.name}: {self.detail}"
        return f"= {self.object_type} {self.name} unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "object_type": self.object_type,
            "name": self.name,
            "detail": self.detail,
            "steps": list(self.steps),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Plan:
    vhost: str
    changes: list[Change] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """True when the vhost differs: apply would change it, or a person must act."""
        return bool(self.drift)

    @property
    def drift(self) -> list[Change]:
        return [c for c in self if c.is_drift]

    @property
    def needs_migration(self) -> bool:
        return bool(self.migrations)

    @property
    def migrations(self) -> list[Change]:
        return [c for c in self if c.kind is ChangeKind.NEEDS_MIGRATION]

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def of_kind(self, kind: ChangeKind) -> list[Change]:
        return [c for c in self if c.kind is kind]

    def summary(self) -> str:
        """One line such as ``vhost /: 3 to create, 1 policy to update, 12 unchanged``."""
        counts = {kind: len(self.of_kind(kind)) for kind in ChangeKind}
        parts = [f"{n} {_SUMMARY[kind]}" for kind, n in counts.items() if n]
        return f"vhost {self.vhost}: " + (", ".join(parts) or "nothing declared")

    def render(self) -> list[str]:
        """One line per change (plus numbered steps and notes), for people."""
        return [line for change in self for line in change.render()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "vhost": self.vhost,
            "has_changes": self.has_changes,
            "needs_migration": self.needs_migration,
            "changes": [c.to_dict() for c in self],
        }
