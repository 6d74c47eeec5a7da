"""Cluster-wide rate limits in Redis: GCRA, one atomic Lua script per decision.

Celery's ``rate_limit`` is per worker process: three replicas at 100/m call a provider 300
times a minute. Here every worker asks the same Redis key (``growbin:rl:openai:gpt-5``).

GCRA keeps one number per limit, the theoretical arrival time (TAT). With ``T = per / (rate -
burst + 1)`` and a tolerance of ``(burst - 1) T``, any ``rate + 1`` allowed calls span at least
``per`` seconds, so no window of ``per`` seconds ever holds more than ``rate`` calls: the
topology's numbers are a hard cap, not an average.

:meth:`RateLimiter.acquire` never blocks. A refused caller gets ``retry_after``: a *wake hint*,
its place in a line of waiters (a sorted set, one entry per waiter id, so a task refused again
does not queue twice) one interval apart. A crowd of deferred tasks thus comes back spread out at
the pace the limit allows, instead of all at once to be refused again. Hints are advice: a woken
task asks again, so the cap holds whoever comes first; a waiter that comes back early keeps its
place, one that lost the race goes to the end, one that never comes back is dropped after
``per`` seconds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from growbin.guard.errors import Throttled
from growbin.guard.store import GuardStore
from growbin.topology.model import RateLimit

LOG_RETENTION = 48 * 3600  # seconds a per-minute throttle count is kept

# KEYS: state hash, this hour's throttle log, waiters (zset: waiter -> wake time, us).
# ARGV: interval, tau, per (us), limit name, log retention (s), waiter id.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tau, per = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat')) or now
if tat < now then tat = now end
local allow_at = tat - tau
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('%.0f', now - per))
if now >= allow_at then
  tat = tat + interval
  redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat))
  redis.call('HINCRBY', KEYS[1], 'allowed', 1)
  redis.call('PEXPIRE', KEYS[1], math.ceil((tat - now + per) / 1000))
  redis.call('ZREM', KEYS[3], ARGV[6])
  return {1, 0, math.floor((tau + interval - (tat - now)) / interval)}
end
local wake = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[6]))
if not wake or wake <= now then
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  wake = allow_at
  if last[2] and tonumber(last[2]) + interval > wake then wake = tonumber(last[2]) + interval end
  redis.call('ZADD', KEYS[3], string.format('%.0f', wake), ARGV[6])
end
local tail = tonumber(redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIRE', KEYS[3], math.ceil((tail - now + per) / 1000))
redis.call('HINCRBY', KEYS[1], 'throttled', 1)
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(tat, tail) - now + per) / 1000))
redis.call('HINCRBY', KEYS[2], math.floor(now / 60000000) * 60 .. '|' .. ARGV[4], 1)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return {0, wake - now, 0}
"""

# A provider's 429 says its own quota is spent: hold every worker back, not only the caller.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tau, hold, per = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat')) or now
if tat < now + hold + tau then tat = now + hold + tau end
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat))
redis.call('PEXPIRE', KEYS[1], math.ceil((tat - now + per) / 1000))
return 1
"""

_PEEK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now - tonumber(ARGV[1])))
local v = redis.call('HMGET', KEYS[1], 'tat', 'allowed', 'throttled')
return {now, v[1] or '0', redis.call('ZCARD', KEYS[2]), v[2] or '0', v[3] or '0'}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds; 0 when allowed
    tokens: int = 0  # calls still free right after this one (for the metrics gauge)


@dataclass(frozen=True)
class LimiterState:
    """One limit as `growbin guard status` and the metrics show it."""

    name: str
    key: str
    rate: int
    per: float
    burst: int
    tokens: int  # calls that would be allowed right now, back to back
    next_free: float  # seconds until the next call is allowed (0: now)
    waiting: int  # deferred callers holding a wake hint (a place in line)
    allowed: int  # calls allowed since the key was last idle for `per` seconds
    throttled: int


@dataclass(frozen=True)
class ThrottleCount:
    """One row of the rate_limit_log (seed 004): throttled calls per limit per minute."""

    minute: int  # epoch seconds, start of the minute
    limit: str
    count: int


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


class RateLimiter:
    """The limits of one topology, keyed ``provider.model`` or ``provider``."""

    def __init__(self, store: GuardStore, limits: Mapping[str, RateLimit]) -> None:
        self.store = store
        self.limits = dict(limits)

    def limit_for(self, provider: str, model: str | None = None) -> str | None:
        """The name of the limit that covers this provider and model, if any."""
        if model is not None and f"{provider}.{model}" in self.limits:
            return f"{provider}.{model}"
        return provider if provider in self.limits else None

    def _key(self, name: str) -> str:
        return self.store.limiter_key(name.replace(".", ":", 1))

    def _waiters_key(self, name: str) -> str:
        return self.store.limiter_waiters_key(name.replace(".", ":", 1))

    def _limit(self, name: str) -> RateLimit:
        try:
            return self.limits[name]
        except KeyError:
            known = ", ".join(sorted(self.limits)) or "(none)"
            raise KeyError(f"no rate limit named {name!r}; known: {known}") from None

    def acquire(self, name: str, waiter: str | None = None) -> Decision:
        """Take one call from the limit if it has one now; never waits.

        ``waiter`` names the caller across deferrals (a request key), so that it holds one
        place in line however often it is refused; None: a new caller each time.
        """
        limit = self._limit(name)
        hour = int(time.time()) // 3600
        key = self._key(name)
        allowed, wait_us, tokens = self.store.run(
            "rate limiter",
            _ACQUIRE,
            [key, self.store.limiter_log_key(hour), self._waiters_key(name)],
            [
                _us(limit.interval),
                _us((limit.burst - 1) * limit.interval),
                _us(limit.per),
                name,
                LOG_RETENTION,
                waiter or uuid.uuid4().hex,
            ],
        )
        return Decision(bool(int(allowed)), max(0.0, int(wait_us) / 1_000_000), max(0, int(tokens)))

    def check(self, name: str, waiter: str | None = None) -> Decision:
        """Acquire or raise :class:`Throttled` with the wake hint as ``retry_after``."""
        decision = self.acquire(name, waiter)
        if not decision.allowed:
            raise self.refusal(name, decision)
        return decision

    def refusal(self, name: str, decision: Decision) -> Throttled:
        return Throttled(name, describe(self._limit(name)), retry_after=decision.retry_after)

    def hold(self, name: str, seconds: float) -> None:
        """Allow no call for ``seconds`` (the provider answered 429 with this Retry-After)."""
        limit = self._limit(name)
        self.store.run(
            "rate limiter",
            _HOLD,
            [self._key(name)],
            [_us((limit.burst - 1) * limit.interval), _us(max(0.0, seconds)), _us(limit.per)],
        )

    def state(self, name: str) -> LimiterState:
        limit = self._limit(name)
        key = self._key(name)
        now, tat, waiting, allowed, throttled = (
            int(v)
            for v in self.store.run(
                "rate limiter", _PEEK, [key, self._waiters_key(name)], [_us(limit.per)]
            )
        )
        interval, tau = _us(limit.interval), _us((limit.burst - 1) * limit.interval)
        tat = max(tat, now)
        backlog = tat - now  # how far ahead of now the limit has been spent
        tokens = max(0, min(limit.burst, (tau + interval - backlog) // interval))
        return LimiterState(
            name=name,
            key=key,
            rate=limit.rate,
            per=limit.per,
            burst=limit.burst,
            tokens=int(tokens),
            next_free=max(0, tat - tau - now) / 1_000_000,
            waiting=waiting,
            allowed=allowed,
            throttled=throttled,
        )

    def states(self) -> list[LimiterState]:
        return [self.state(name) for name in sorted(self.limits)]

    def reset(self, name: str) -> None:
        """Forget a limit's state (an operator's fresh start; the cap holds again at once)."""
        self._limit(name)
        self.store.call("rate limiter", "delete", self._key(name), self._waiters_key(name))


def describe(limit: RateLimit) -> str:
    burst = f", burst {limit.burst}" if limit.burst > 1 else ""
    return f"{limit.rate} per {limit.per:g}s{burst}"


def rate_limit_log(store: GuardStore, *, hours: int = 1) -> list[ThrottleCount]:
    """Throttled calls per limit and minute over the last ``hours`` hours, oldest first."""
    current = int(time.time()) // 3600
    rows: list[ThrottleCount] = []
    for hour in range(current - max(0, hours - 1) - 1, current + 1):
        fields = store.call("rate limit log", "hgetall", store.limiter_log_key(hour)) or {}
        for field, count in fields.items():
            minute, _, name = str(field).partition("|")
            rows.append(ThrottleCount(int(minute), name, int(count)))
    cutoff = time.time() - hours * 3600
    return sorted((r for r in rows if r.minute >= cutoff - 60), key=lambda r: (r.minute, r.limit))
