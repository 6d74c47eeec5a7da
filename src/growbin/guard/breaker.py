"""Circuit breakers per external provider, their state shared by every worker in Redis.

closed: calls pass; each outage failure (5xx, timeout, dropped connection; never a 4xx or a
429, which prove the provider is up) is kept with its time, and ``failures`` of them within
``window`` seconds open the breaker. open: calls fail at once with :class:`BreakerOpen`
instead of each waiting for a timeout, until ``reset_after`` has passed. half-open: exactly one
caller takes the probe (``SET NX`` on the probe key, inside the same script); its success closes
the breaker, its failure opens it for another ``reset_after``. A probe whose worker died frees
the probe key when it expires (after ``reset_after``), so another caller can probe.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from growbin.guard.errors import BreakerOpen
from growbin.guard.store import GuardStore
from growbin.topology.model import BreakerPolicy


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS: state hash, failures zset, probe key. ARGV: token, reset_after (us).
_ALLOW = (
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, 0, 0} end
if state == 'open' then
  local until_ = tonumber(redis.call('HGET', KEYS[1], 'open_until')) or 0
  if now < until_ then return {0, until_ - now, 0} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'since', string.format('%.0f', now))
end
local reset = tonumber(ARGV[2])
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', math.ceil(reset / 1000)) then
  return {1, 0, 1}
end
return {0, math.max(redis.call('PTTL', KEYS[3]), 1) * 1000, 0}
"""
)

# ARGV: token, failed (0/1), is_probe (0/1), failures, window (us), reset_after (us).
_RECORD = (
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failed, probe = ARGV[2] == '1', ARGV[3] == '1'
local function set_state(new, extra)
  redis.call('HSET', KEYS[1], 'state', new, 'since', string.format('%.0f', now))
  if extra then redis.call('HSET', KEYS[1], 'open_until', string.format('%.0f', extra)) end
  redis.call('HINCRBY', KEYS[1], 'to_' .. new, 1)
end
if probe and redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
if not failed then
  if state == 'half_open' then
    set_state('closed')
    redis.call('DEL', KEYS[2], KEYS[3])
    return 'closed'
  end
  return state
end
if state == 'half_open' then
  if probe then
    set_state('open', now + tonumber(ARGV[6]))
    return 'open'
  end
  return state
end
if state == 'open' then return state end
local window = tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now - window))
redis.call('PEXPIRE', KEYS[2], math.ceil(window / 1000))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  set_state('open', now + tonumber(ARGV[6]))
  redis.call('DEL', KEYS[2])
  return 'open'
end
return state
"""
)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_PEEK = (
    _NOW
    + """
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now - window))
local v = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'to_open')
return {now, v[1] or 'closed', v[2] or '0', v[3] or '0', redis.call('ZCARD', KEYS[2]),
        redis.call('PTTL', KEYS[3])}
"""
)


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; hand it back with :meth:`CircuitBreaker.record` or release."""

    breaker: str
    token: str
    probe: bool


@dataclass(frozen=True)
class BreakerStatus:
    name: str
    state: BreakerState
    failures: int  # outage failures within the window (closed state)
    threshold: int
    window: float
    reset_after: float
    retry_after: float  # seconds until a probe may go (open), else 0
    probe_in_flight: bool
    times_opened: int


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


class CircuitBreaker:
    """One provider's breaker."""

    def __init__(self, store: GuardStore, name: str, policy: BreakerPolicy) -> None:
        self.store = store
        self.name = name
        self.policy = policy
        self._keys = [
            store.breaker_key(name),
            store.breaker_failures_key(name),
            store.breaker_probe_key(name),
        ]

    def allow(self) -> Permit:
        """A permit to call, or :class:`BreakerOpen` with the time until a probe may go."""
        token = uuid.uuid4().hex
        allowed, wait_us, probe = self.store.run(
            "circuit breaker", _ALLOW, self._keys, [token, _us(self.policy.reset_after)]
        )
        if not int(allowed):
            detail = (
                f"{self.policy.failures} outage failures within {self.policy.window:g}s; "
                f"one probe call every {self.policy.reset_after:g}s decides when it closes"
            )
            raise BreakerOpen(self.name, detail, retry_after=int(wait_us) / 1_000_000)
        return Permit(self.name, token, bool(int(probe)))

    def record(self, permit: Permit, *, failed: bool) -> BreakerState:
        """Report how the call went: ``failed`` only for an outage (5xx, timeout, connection)."""
        state = self.store.run(
            "circuit breaker",
            _RECORD,
            self._keys,
            [
                permit.token,
                int(failed),
                int(permit.probe),
                self.policy.failures,
                _us(self.policy.window),
                _us(self.policy.reset_after),
            ],
        )
        return BreakerState(str(state))

    def release(self, permit: Permit) -> None:
        """The call was not made after all (throttled): free the probe for someone else."""
        if permit.probe:
            self.store.run("circuit breaker", _RELEASE, [self._keys[2]], [permit.token])

    def status(self) -> BreakerStatus:
        now, state, open_until, opened, failures, probe_ttl = self.store.run(
            "circuit breaker", _PEEK, self._keys, [_us(self.policy.window)]
        )
        current = BreakerState(str(state))
        wait = max(0, int(open_until) - int(now)) / 1_000_000 if current is BreakerState.OPEN else 0
        return BreakerStatus(
            name=self.name,
            state=current,
            failures=int(failures),
            threshold=self.policy.failures,
            window=self.policy.window,
            reset_after=self.policy.reset_after,
            retry_after=wait,
            probe_in_flight=int(probe_ttl) > 0,
            times_opened=int(opened),
        )

    def reset(self) -> None:
        """Close the breaker now (an operator who knows the provider is back)."""
        self.store.call("circuit breaker", "delete", *self._keys)


class Breakers:
    """The breakers of one topology, by provider name."""

    def __init__(self, store: GuardStore, policies: Mapping[str, BreakerPolicy]) -> None:
        self.store = store
        self._breakers = {name: CircuitBreaker(store, name, p) for name, p in policies.items()}

    def get(self, provider: str) -> CircuitBreaker | None:
        return self._breakers.get(provider)

    def __getitem__(self, provider: str) -> CircuitBreaker:
        try:
            return self._breakers[provider]
        except KeyError:
            known = ", ".join(sorted(self._breakers)) or "(none)"
            raise KeyError(f"no breaker named {provider!r}; known: {known}") from None

    def statuses(self) -> list[BreakerStatus]:
        return [self._breakers[name].status() for name in sorted(self._breakers)]
