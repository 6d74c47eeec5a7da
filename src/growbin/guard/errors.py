"""What the guards raise, sorted for the task base: defer, retry, or give up.

:class:`Deferred` (a rate limit, or another worker already making the same paid call) is not a
failure of the task: the task base republishes it for later without spending its retry budget.
:class:`BreakerOpenError` is a failure of the provider: it is retried like any transient error, but
not before the breaker lets a probe through.
"""

from __future__ import annotations

from growbin.errors import TransientTaskError


def _rebuild(
    cls: type[BaseException], state: dict[str, object], args: tuple[object, ...]
) -> BaseException:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class GuardError(TransientTaskError):
    """Base of the guard errors (all transient: the cause passes, or the task is deferred)."""

    # Celery pickles exceptions into results and dead letters; the default reduce would call
    # __init__ with the message alone, which these signatures do not accept.
    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), dict(self.__dict__), self.args))


class Deferred(GuardError):  # noqa: N818 - a request to the task base, not a failure
    """Run this task again after ``retry_after`` seconds; it did nothing wrong."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        self.retry_after = max(0.0, retry_after)
        super().__init__(message)


class Throttled(Deferred):
    """A cluster-wide rate limit is spent for now."""

    def __init__(self, limit: str, describe: str, *, retry_after: float) -> None:
        self.limit = limit
        super().__init__(
            f"rate limit {limit} ({describe}) is spent: the task is deferred {retry_after:.2f}s "
            "without using its retry budget. If this persists, raise the limit under "
            "`rate_limits:` in the topology, or ask the provider for more quota",
            retry_after=retry_after,
        )


class StillInProgress(Deferred):
    """Another run holds the idempotency key: its result will be reused, not recomputed."""

    def __init__(self, key: str, *, retry_after: float) -> None:
        self.key = key
        super().__init__(
            f"idempotency key {key} is held by another run that has not finished: deferred "
            f"{retry_after:.2f}s to reuse its result. A run that died frees the key when its "
            "lock expires",
            retry_after=retry_after,
        )


class BreakerOpenError(GuardError):
    """The provider failed repeatedly: calls fail fast until a probe finds it working again."""

    def __init__(self, breaker: str, detail: str, *, retry_after: float) -> None:
        self.breaker = breaker
        self.retry_after = max(0.0, retry_after)
        super().__init__(
            f"circuit breaker {breaker} is open ({detail}): the call was not made; next try in "
            f"{self.retry_after:.1f}s. Check the provider's status page; `growbin guard status` "
            "shows the breaker"
        )


class GuardUnavailableError(GuardError):
    """Redis, which holds the guards' shared state, cannot be reached: no call is made."""

    def __init__(self, what: str, url: str, reason: str) -> None:
        super().__init__(
            f"the {what} cannot reach Redis at {url} ({reason}): the provider was not called "
            "(guards fail closed, so a quota cannot be overrun). Fix: check that Redis is "
            "running and GROWBIN_REDIS_URL"
        )


# The names the issue uses.
BreakerOpen = BreakerOpenError
GuardUnavailable = GuardUnavailableError
