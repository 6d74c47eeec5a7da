"""Guards for external calls: global rate limits, circuit breakers, idempotency keys.

All three keep their state in Redis, shared by every worker, and decide in one Lua script each.
Paid providers are wrapped by :mod:`growbin.guard.providers` (see ``scan/context.py``); tasks
with other side effects use :func:`growbin.guard.idempotency.idempotent`.
"""

from growbin.guard.breaker import BreakerState, BreakerStatus, CircuitBreaker
from growbin.guard.errors import (
    BreakerOpen,
    BreakerOpenError,
    Deferred,
    GuardUnavailable,
    GuardUnavailableError,
    StillInProgress,
    Throttled,
)
from growbin.guard.idempotency import IdempotencyStore, Slot, idempotent
from growbin.guard.providers import (
    GuardConfig,
    GuardedTextGenerator,
    GuardedVisionClassifier,
    GuardObserver,
    Guards,
    ProviderGuard,
)
from growbin.guard.ratelimit import Decision, LimiterState, RateLimiter, rate_limit_log
from growbin.guard.store import GuardStore

__all__ = [
    "BreakerOpen",
    "BreakerOpenError",
    "BreakerState",
    "BreakerStatus",
    "CircuitBreaker",
    "Decision",
    "Deferred",
    "GuardConfig",
    "GuardObserver",
    "GuardStore",
    "GuardUnavailable",
    "GuardUnavailableError",
    "GuardedTextGenerator",
    "GuardedVisionClassifier",
    "Guards",
    "IdempotencyStore",
    "LimiterState",
    "ProviderGuard",
    "RateLimiter",
    "Slot",
    "StillInProgress",
    "Throttled",
    "idempotent",
    "rate_limit_log",
]
