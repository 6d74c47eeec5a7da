"""One exception hierarchy. Every message names the bad value and the fix."""

from __future__ import annotations


class GrowbinError(Exception):
    """Base of every error Growbin raises on purpose."""

    exit_code = 1


class ConfigError(GrowbinError):
    """A setting is missing, malformed or insecure."""

    exit_code = 2


class TopologyError(GrowbinError):
    """A topology file cannot be read or does not fit the schema.

    ``location`` is ``file:line`` (or ``file`` when the line is unknown).
    """

    exit_code = 2

    def __init__(self, message: str, location: str | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class TopologyLintError(GrowbinError):
    """A topology has lint errors; it must not reach a broker or start a worker."""

    def __init__(self, message: str, findings: list[object] | None = None) -> None:
        self.findings = findings or []
        super().__init__(message)


class ServiceUnavailableError(GrowbinError):
    """A service (RabbitMQ, its management API, Redis, PostgreSQL) cannot be reached."""

    exit_code = 3

    def __init__(self, service: str, url: str, reason: str, fix: str | None = None) -> None:
        self.service = service
        self.url = url
        hint = fix or f"check that {service} is running and that the URL is right"
        super().__init__(f"{service} is not reachable at {url}: {reason}. Fix: {hint}.")


class BrokerApiError(GrowbinError):
    """The RabbitMQ management API answered with an error."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.status = status
        super().__init__(f"RabbitMQ management API {method} {path} answered {status}: {body[:300]}")


class MigrationRequiredError(GrowbinError):
    """Applying the topology needs a manual migration (an immutable property differs)."""


class TaskError(GrowbinError):
    """Raised by task code to say how a failure should be handled."""


class TransientTaskError(TaskError):
    """Worth retrying: the cause may go away (a timeout, a 429, a 5xx, a dropped connection)."""


class FatalTaskError(TaskError):
    """Retrying cannot help (bad input, a 4xx): the task is dead-lettered at once."""
