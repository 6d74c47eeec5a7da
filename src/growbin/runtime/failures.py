"""Which failures are worth a retry, how long to wait before it, and which mean an outage."""

from __future__ import annotations

import math
import random

from celery.exceptions import SoftTimeLimitExceeded

from growbin.errors import FatalTaskError, ServiceUnavailableError, TransientTaskError
from growbin.topology.model import RetryPolicy

# Matched by class name up the MRO, so that optional libraries need not be imported here.
_TRANSIENT_NAMES = frozenset(
    {
        "TimeoutException",  # httpx
        "TransportError",  # httpx
        "OperationalError",  # sqlalchemy, kombu
        "InterfaceError",  # sqlalchemy / psycopg: connection gone
        "BusyLoadingError",  # redis
    }
)
_REDIS_TRANSIENT = ("redis.exceptions.ConnectionError", "redis.exceptions.TimeoutError")
# Failures that say a provider is down, for circuit breakers (growbin's provider errors carry
# their status; these have none: a timeout or a connection that never came up).
_OUTAGE_NAMES = frozenset({"ProviderUnavailableError", "TimeoutException", "TransportError"})
# A Retry-After or a breaker's wait beyond this is a misconfiguration, not a plan.
MAX_RETRY_AFTER = 3600.0


def is_transient(exc: BaseException) -> bool:
    """True for errors whose cause may pass: retry them. False: dead-letter at once."""
    # ServiceUnavailableError: Redis, PostgreSQL or RabbitMQ could not be reached (RedisKV and
    # db.engine.translate_errors raise it for a refused, dropped or timed-out connection). Our
    # own services come back after a restart or a failover: retry with the route's backoff.
    if isinstance(exc, TransientTaskError | SoftTimeLimitExceeded | ServiceUnavailableError):
        return True
    if isinstance(exc, FatalTaskError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    status = _http_status(exc)
    if status is not None:
        return status == 429 or status >= 500
    for kind in type(exc).__mro__:
        if kind.__name__ in _TRANSIENT_NAMES:
            return True
        if f"{kind.__module__}.{kind.__qualname__}" in _REDIS_TRANSIENT:
            return True
    return False


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before retry ``attempt`` (0 = the first retry): exponential, capped, jittered.

    Equal jitter: half the delay is fixed, half random, so retries of many tasks spread out while
    each task's delays still grow (the n-th lies in [d_n / 2, d_n], and d_{n+1} = 2 d_n).
    """
    delay = policy.delay(attempt)
    if not policy.jitter or delay <= 0:
        return delay
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def is_outage(exc: BaseException) -> bool:
    """True when the provider looks down: a 5xx, a timeout, a connection error.

    A 429 or another 4xx proves the provider is up and answering (the request or the quota is
    the problem), so a circuit breaker must not count it.
    """
    status = _http_status(exc)
    if status is None:
        found = getattr(exc, "status", None)
        status = found if isinstance(found, int) else None
    if status is not None:
        return status >= 500
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(kind.__name__ in _OUTAGE_NAMES for kind in type(exc).__mro__)


def retry_after_of(exc: BaseException) -> float | None:
    """The wait an error asks for (a Retry-After header, a breaker's time to its probe)."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return min(float(value), MAX_RETRY_AFTER)
    return None


def retry_countdown(
    policy: RetryPolicy, attempt: int, exc: BaseException, rng: random.Random | None = None
) -> float:
    """The backoff delay, but never less than what the error itself asks to wait."""
    delay = backoff_delay(policy, attempt, rng)
    wanted = retry_after_of(exc)
    return max(delay, wanted) if wanted is not None else delay


def defer_countdown(retry_after: float) -> int:
    """Whole seconds to defer a task: RabbitMQ's delayed delivery counts whole seconds (it
    would truncate 0.6 to 0, an immediate redelivery that spins), so round up, at least 1."""
    return max(1, math.ceil(min(retry_after, MAX_RETRY_AFTER) - 1e-6))
