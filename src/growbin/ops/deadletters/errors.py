"""Errors of the dead-letter tools; each message names the fix."""

from __future__ import annotations

from growbin.errors import GrowbinError


class DeadLetterError(GrowbinError):
    """A dead-letter command cannot do what was asked."""


class DeadLetterNotFoundError(DeadLetterError):
    """No archived dead letter has that id (or the prefix is ambiguous)."""


class ConfirmationRequiredError(DeadLetterError):
    """A destructive command was not confirmed."""


class ReplayError(DeadLetterError):
    """A replayed message was not confirmed by the broker; its dead letter was kept."""


class DeadLetterBusyError(DeadLetterError):
    """Another dead-letter command holds the queue."""
