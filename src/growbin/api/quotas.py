"""Per-key quotas, shared by every API process through Redis: rates, work in flight, streams.

- **Rates**: each key has a request rate over all routes and, on top, a rate per route family
  (``submit``, ``read``, ``events``, ``admin``). Both are GCRA limits as in
  :mod:`growbin.guard.ratelimit` (one number per limit, Redis's clock, one atomic script), so no
  window of ``per`` seconds holds more than the rate; ``burst`` requests may come back to back.
  A request is charged to every limit that covers it, or to none when one refuses.
- **In flight**: the scans and tasks a key has queued or running. Each submission holds a slot
  (a sorted-set member that expires after ``quota_in_flight_ttl``); a full set is pruned of
  what has finished (scans in a final status, tasks with a final state) before it refuses.
  Example tasks with a ``delay`` have their own, smaller cap, so one key's sleeping tasks
  cannot occupy the workers everyone else's tasks need.
- **Streams**: open event streams per key, each a slot released when the stream ends.

Over a quota the answer is 429 with ``Retry-After`` and ``RateLimit-Limit``,
``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds) and ``RateLimit-Policy``, and nothing is
queued. Accepted requests carry the same RateLimit fields for the tightest rate.

Redis down: the quotas cannot decide, and the API serves without them (a warning, then a
retry every few seconds) rather than refuse reads that need no Redis; submissions are refused
by the publishing path anyway while Redis is down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from growbin.api.problems import ApiError
from growbin.api_config import ApiConfig, parse_family_rates, parse_rate
from growbin.guard.errors import GuardUnavailable
from growbin.guard.store import GuardStore

log = logging.getLogger(__name__)

OPEN_AGAIN_AFTER = 5.0  # seconds without quota checks after Redis failed to answer
WARN_EVERY = 60.0

# KEYS: one TAT per limit. ARGV: interval (us), burst, for each limit in turn.
# Returns {allowed, retry_after_us, index of the tightest limit (1-based), remaining, reset_us}.
_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, worst_wait, worst = {}, 0, 1
for i, key in ipairs(KEYS) do
  local interval, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  tats[i] = tat
  local wait = tat - (burst - 1) * interval - now
  if wait > worst_wait then worst_wait, worst = wait, i end
end
if worst_wait > 0 then
  return {0, worst_wait, worst, 0, tats[worst] - now}
end
local least, least_i, least_reset = nil, 1, 0
for i, key in ipairs(KEYS) do
  local interval, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = tats[i] + interval
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  local remaining = math.floor((now + (burst - 1) * interval - tat) / interval) + 1
  if remaining < 0 then remaining = 0 end
  if least == nil or remaining < least then
    least, least_i, least_reset = remaining, i, tat - now
  end
end
return {1, 0, least_i, least, least_reset}
"""

# KEYS: the slots (a sorted set: member -> expiry, ms). ARGV: cap, ttl (ms), members...
# Returns {allowed, slots in use, ms until the oldest slot expires}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local used = redis.call('ZCARD', KEYS[1])
local cap, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
if used + #ARGV - 2 > cap then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, used, first[2] and (tonumber(first[2]) - now) or 0}
end
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, used + #ARGV - 2, 0}
"""


@dataclass(frozen=True)
class Rate:
    count: int
    per: float
    burst: int

    @property
    def interval(self) -> float:
        return self.per / self.count

    def policy(self, name: str) -> str:
        return f'{self.count};w={self.per:g};burst={self.burst};name="{name}"'

    @classmethod
    def of(cls, rate: tuple[int, float], burst: int) -> Rate:
        count, per = rate
        return cls(count, per, max(1, min(burst, count)))


@dataclass(frozen=True)
class KeyQuotas:
    """The quotas of one key: the settings' defaults with the key's own overrides."""

    rate: Rate
    families: dict[str, Rate] = field(default_factory=dict)
    in_flight: int = 30
    delayed_in_flight: int = 2
    streams: int = 5

    @classmethod
    def defaults(cls, config: ApiConfig) -> KeyQuotas:
        burst = config.quota_burst
        return cls(
            rate=Rate.of(parse_rate(config.quota_rate), burst),
            families={f: Rate.of(r, burst) for f, r in config.family_rates().items()},
            in_flight=config.quota_in_flight,
            delayed_in_flight=config.quota_delayed_in_flight,
            streams=config.quota_streams,
        )

    def overridden(self, stored: dict[str, Any] | None) -> KeyQuotas:
        """These quotas with a key's stored overrides (see :func:`overrides`) applied."""
        if not stored:
            return self
        burst = int(stored.get("burst", self.rate.burst))
        rate = (
            Rate.of(parse_rate(str(stored["rate"])), burst)
            if "rate" in stored
            else replace(self.rate, burst=max(1, min(burst, self.rate.count)))
        )
        families = dict(self.families)
        for family, text in parse_family_rates(dict(stored.get("families") or {})).items():
            families[family] = Rate.of(text, burst)
        return KeyQuotas(
            rate=rate,
            families=families,
            in_flight=int(stored.get("in_flight", self.in_flight)),
            delayed_in_flight=int(stored.get("delayed_in_flight", self.delayed_in_flight)),
            streams=int(stored.get("streams", self.streams)),
        )


def overrides(
    rates: Iterable[str] = (),
    *,
    burst: int | None = None,
    in_flight: int | None = None,
    delayed_in_flight: int | None = None,
    streams: int | None = None,
) -> dict[str, Any] | None:
    """What ``growbin apikey create --rate 600/m --rate submit=120/m ...`` stores with a key.

    A rate without a family (``600/m``) is the key's rate over all routes; ``family=rate`` sets
    one route family's. ValueError names a bad value and the fix.
    """
    stored: dict[str, Any] = {}
    families: dict[str, str] = {}
    for text in rates:
        if "=" in text:
            family, _, rate = text.partition("=")
            parse_family_rates({family: rate})
            families[family.strip().lower()] = rate.strip()
        else:
            parse_rate(text)
            stored["rate"] = text.strip()
    if families:
        stored["families"] = families
    for name, value, least in (
        ("burst", burst, 1),
        ("in_flight", in_flight, 1),
        ("delayed_in_flight", delayed_in_flight, 0),
        ("streams", streams, 0),
    ):
        if value is None:
            continue
        if value < least:
            raise ValueError(f"--{name.replace('_', '-')} {value}: give a number >= {least}")
        stored[name] = value
    return stored or None


def family_of(method: str, path: str) -> str:
    """The route family a request belongs to (for its family's rate)."""
    if path.startswith("/v1/admin") or path == "/metrics":
        return "admin"
    if path.endswith("/events"):
        return "events"
    if (method == "POST" and path.rstrip("/") == "/v1/scans") or path.startswith("/solo/"):
        return "submit"
    return "read"


def _headers(rate: Rate, name: str, remaining: int, reset: float) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(rate.burst),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(math.ceil(max(0.0, reset))),
        "RateLimit-Policy": rate.policy(name),
    }


def too_many(code: str, detail: str, retry_after: float, headers: dict[str, str]) -> ApiError:
    wait = max(1, math.ceil(retry_after))
    return ApiError(429, code, detail, {**headers, "Retry-After": str(wait)}, retry_after=wait)


class Hold:
    """Slots taken in a sorted set; :meth:`release` gives them back (idempotent)."""

    def __init__(self, quotas: Quotas | None, key: str, members: Sequence[str]) -> None:
        self._quotas = quotas
        self._key = key
        self.members = list(members)

    def release(self) -> None:
        quotas, self._quotas = self._quotas, None
        if quotas is not None and self.members:
            quotas.forget(self._key, self.members)


NO_HOLD = Hold(None, "", ())

# which members of a key's in-flight set have finished (scans in a final status, tasks done)
Finished = Callable[[list[str]], set[str]]


class Quotas:
    def __init__(self, store: GuardStore | None, *, in_flight_ttl: float, stream_ttl: float):
        self.store = store
        self.in_flight_ttl = in_flight_ttl
        self.stream_ttl = stream_ttl
        self._closed_until = 0.0
        self._warned_at = 0.0
        self._lock = threading.Lock()

    def _key(self, key_prefix: str, what: str) -> str:
        assert self.store is not None
        return f"{self.store.prefix}:api:quota:{key_prefix}:{what}"

    def _available(self) -> bool:
        return self.store is not None and time.monotonic() >= self._closed_until

    def _down(self, exc: GuardUnavailable) -> None:
        now = time.monotonic()
        with self._lock:
            self._closed_until = now + OPEN_AGAIN_AFTER
            warn = now - self._warned_at >= WARN_EVERY
            if warn:
                self._warned_at = now
        if warn:
            log.warning("quotas are not enforced while Redis does not answer: %s", exc)

    def check_rate(self, key_prefix: str, quotas: KeyQuotas, family: str) -> dict[str, str]:
        """Charge one request; the RateLimit headers, or 429 (nothing charged)."""
        if not self._available():
            return {}
        assert self.store is not None
        limits = [("all", quotas.rate)]
        if family in quotas.families:
            limits.append((family, quotas.families[family]))
        args: list[Any] = []
        for _, rate in limits:
            args += [round(rate.interval * 1_000_000), rate.burst]
        try:
            allowed, wait_us, index, remaining, reset_us = self.store.run(
                "API quota", _RATE, [self._key(key_prefix, f"rate:{n}") for n, _ in limits], args
            )
        except GuardUnavailable as exc:
            self._down(exc)
            return {}
        name, rate = limits[int(index) - 1]
        policy = "key" if name == "all" else name
        headers = _headers(rate, policy, int(remaining), int(reset_us) / 1e6)
        if not int(allowed):
            retry = int(wait_us) / 1e6
            scope = "all routes" if name == "all" else f"the {name} routes"
            raise too_many(
                "rate_limited",
                f"this API key sent too many requests to {scope} ({rate.count} per "
                f"{rate.per:g} s, bursts of {rate.burst}): retry after {math.ceil(retry)} s, "
                "or ask for a higher quota (`growbin apikey create --rate ...`)",
                retry,
                {**headers, "RateLimit-Reset": str(max(1, math.ceil(retry)))},
            )
        return headers

    def hold_tasks(
        self,
        key_prefix: str,
        quotas: KeyQuotas,
        members: Sequence[str],
        finished: Finished,
        *,
        delayed: bool = False,
        retry_after: float = 5.0,
    ) -> Hold:
        """Slots for ``members`` (``scan:<id>``, ``task:<id>``) or 429 ``too_many_in_flight``."""
        holds = [self._admit(key_prefix, "inflight", quotas.in_flight, members, finished)]
        if holds[0] is None:
            raise self._full(
                "too_many_in_flight",
                f"this API key has {quotas.in_flight} scans and tasks queued or running, its "
                "limit: wait for some to finish",
                quotas.in_flight,
                "in_flight",
                retry_after,
            )
        if delayed:
            slot = self._admit(key_prefix, "delayed", quotas.delayed_in_flight, members, finished)
            if slot is None:
                for hold in holds:
                    if hold is not None:
                        hold.release()
                raise self._full(
                    "too_many_in_flight",
                    f"this API key has {quotas.delayed_in_flight} example tasks with a delay "
                    "queued or running, its limit: wait for one to finish, or send it without "
                    "a delay",
                    quotas.delayed_in_flight,
                    "delayed_in_flight",
                    retry_after,
                )
            holds.append(slot)
        return _Both([h for h in holds if h is not None])

    def open_stream(self, key_prefix: str, quotas: KeyQuotas, retry_after: float) -> Hold:
        member = f"stream:{uuid.uuid4().hex}"
        hold = self._admit(key_prefix, "streams", quotas.streams, [member], None)
        if hold is None:
            raise self._full(
                "too_many_streams",
                f"this API key has {quotas.streams} event streams open, its limit: close one "
                "(or read the scan with GET instead)",
                quotas.streams,
                "streams",
                retry_after,
            )
        return hold

    def _full(self, code: str, detail: str, cap: int, name: str, retry: float) -> ApiError:
        headers = {
            "RateLimit-Limit": str(cap),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(max(1, math.ceil(retry))),
            "RateLimit-Policy": f'{cap};name="{name}"',
        }
        return too_many(code, detail, retry, headers)

    def _admit(
        self,
        key_prefix: str,
        what: str,
        cap: int,
        members: Sequence[str],
        finished: Finished | None,
    ) -> Hold | None:
        if not self._available() or not members:
            return NO_HOLD
        key = self._key(key_prefix, what)
        ttl = self.stream_ttl if what == "streams" else self.in_flight_ttl
        args = [cap, round(ttl * 1000), *members]
        try:
            allowed = int(self._run_admit(key, args))
            if not allowed and finished is not None and self._prune(key, finished):
                allowed = int(self._run_admit(key, args))
        except GuardUnavailable as exc:
            self._down(exc)
            return NO_HOLD
        return Hold(self, key, members) if allowed else None

    def _run_admit(self, key: str, args: list[Any]) -> int:
        assert self.store is not None
        allowed, _, _ = self.store.run("API quota", _ADMIT, [key], args)
        return int(allowed)

    def _prune(self, key: str, finished: Finished) -> bool:
        assert self.store is not None
        members = [str(m) for m in self.store.call("API quota", "zrange", key, 0, -1)]
        done = finished(members)
        if done:
            self.store.call("API quota", "zrem", key, *done)
        return bool(done)

    def forget(self, key: str, members: Sequence[str]) -> None:
        if self.store is None:
            return
        try:
            self.store.call("API quota", "zrem", key, *members)
        except GuardUnavailable as exc:
            self._down(exc)  # the slots expire on their own

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


class _Both(Hold):
    def __init__(self, holds: list[Hold]) -> None:
        super().__init__(None, "", ())
        self._holds = holds

    def release(self) -> None:
        for hold in self._holds:
            hold.release()


class RateLimitHeaders:
    """Adds the RateLimit fields a request was metered with to its answer (ASGI middleware)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                extra = state.get("ratelimit") if isinstance(state, dict) else None
                if extra:
                    present = {name.lower() for name, _ in message.get("headers", [])}
                    added = [
                        (k.lower().encode(), v.encode())
                        for k, v in extra.items()
                        if k.lower().encode() not in present
                    ]
                    message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, with_headers)
