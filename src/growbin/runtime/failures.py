"""Which failures are worth a retry, and how long to wait before it."""

from __future__ import annotations

import random

from celery.exceptions import SoftTimeLimitExceeded

from growbin.errors import FatalTaskError, TransientTaskError
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


def is_transient(exc: BaseException) -> bool:
    """True for errors whose cause may pass: retry them. False: dead-letter at once."""
    if isinstance(exc, TransientTaskError | SoftTimeLimitExceeded):
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
