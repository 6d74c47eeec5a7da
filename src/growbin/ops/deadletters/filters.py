"""Which dead letters a command acts on: filters, ages like 30m/2h/1d, states and reasons."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from growbin.db.models import DeadLetterState
from growbin.ops.deadletters.errors import DeadLetterError
from growbin.ops.deadletters.message import UNKNOWN_REASON, UNROUTABLE_REASON
from growbin.runtime.deadletter import DeathReason

KNOWN_REASONS = (*(r.value for r in DeathReason), UNROUTABLE_REASON, UNKNOWN_REASON)

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_AGE = timedelta(days=36500)


def parse_age(text: str) -> timedelta:
    """'30m', '2h', '1d', '45s', '1w' as a timedelta."""
    match = _AGE.match(text)
    if match is None:
        raise DeadLetterError(
            f"age {text!r} is not understood: write a number and a unit "
            "(s, m, h, d or w), e.g. 30m, 2h, 1d"
        )
    number, unit = match.groups()
    try:
        age = timedelta(**{_UNITS[unit.lower()]: float(number)})
    except OverflowError:
        age = MAX_AGE * 2
    # an age beyond any dead letter's would overflow the date it is subtracted from
    if age > MAX_AGE:
        raise DeadLetterError(
            f"age {text!r} is longer than {MAX_AGE.days} days: give at most {MAX_AGE.days}d "
            "(older than that there is nothing)"
        )
    return age


def parse_state(text: str) -> DeadLetterState:
    try:
        return DeadLetterState(text.strip().lower())
    except ValueError:
        known = ", ".join(s.value for s in DeadLetterState)
        raise DeadLetterError(f"state {text!r} is not known: use one of {known}") from None


def parse_reason(text: str) -> str:
    reason = text.strip().lower()
    if reason not in KNOWN_REASONS:
        raise DeadLetterError(
            f"reason {text!r} is not known: use one of {', '.join(KNOWN_REASONS)}"
        )
    return reason


@dataclass(frozen=True)
class DeadLetterFilter:
    """Conditions that all must hold. ``task`` may be a glob (growbin.scan.*); ``exception``
    is a case-insensitive substring of the exception type or message; ages are measured back
    from now against the time the message was dead-lettered.
    """

    task: str | None = None
    queue: str | None = None
    reason: str | None = None
    exception: str | None = None
    states: tuple[DeadLetterState, ...] = ()
    older_than: timedelta | None = None
    newer_than: timedelta | None = None

    def is_empty(self) -> bool:
        return self == DeadLetterFilter()

    def describe(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (
                ("task", self.task),
                ("queue", self.queue),
                ("reason", self.reason),
                ("exception", self.exception),
                ("state", ",".join(s.value for s in self.states) or None),
                ("older-than", self.older_than),
                ("newer-than", self.newer_than),
            )
            if value is not None
        ]
        return " ".join(parts) or "(no filter)"

    @classmethod
    def from_options(
        cls,
        *,
        task: str | None = None,
        queue: str | None = None,
        reason: str | None = None,
        exception: str | None = None,
        states: list[str] | tuple[str, ...] | None = None,
        older_than: str | None = None,
        newer_than: str | None = None,
    ) -> DeadLetterFilter:
        """Build from command-line or query text, checking every value ("all" = every state)."""
        if states and any(s.strip().lower() == "all" for s in states):
            states = [s.value for s in DeadLetterState]
        return cls(
            task=task or None,
            queue=queue or None,
            reason=parse_reason(reason) if reason else None,
            exception=exception or None,
            states=tuple(parse_state(s) for s in states or ()),
            older_than=parse_age(older_than) if older_than else None,
            newer_than=parse_age(newer_than) if newer_than else None,
        )
