"""Every paid provider call through the guards: idempotency, breaker, rate limit, then the call.

The order is chosen so that nothing is spent for nothing:

1. a stored result for the same request of the same task (idempotency key: task id + request
   content, see :mod:`growbin.guard.scope`) is returned at once: a redelivered task costs
   neither a rate-limit slot nor a call;
2. the key is claimed, so a duplicate running elsewhere is deferred to reuse our result;
3. an open breaker fails fast before a rate-limit slot is taken;
4. the rate limit: a refusal frees the claim and the probe, and raises :class:`Throttled`;
5. the call; an outage failure feeds the breaker, a 429 holds the limit for every worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from growbin.guard.breaker import Breakers, BreakerState, CircuitBreaker, Permit
from growbin.guard.errors import BreakerOpen
from growbin.guard.idempotency import DEFAULT_LOCK_TTL, DEFAULT_TTL, IdempotencyStore, Slot
from growbin.guard.ratelimit import Decision, RateLimiter
from growbin.guard.scope import current_operation
from growbin.guard.store import DEFAULT_PREFIX, GuardStore
from growbin.runtime.failures import is_outage, retry_after_of
from growbin.scan.providers.base import Classification, Guidance, TextGenerator, VisionClassifier
from growbin.topology.model import BreakerPolicy, RateLimit, Topology

T = TypeVar("T")
DEFAULT_429_HOLD = 1.0  # seconds every worker holds back after a 429 without Retry-After
logger = logging.getLogger("growbin.guard")


class GuardObserver(Protocol):
    """Told of every decision (the metrics plug in here); must be quick and must not raise."""

    def limited(self, limit: str, decision: Decision) -> None: ...
    def breaker(self, provider: str, state: BreakerState) -> None: ...


class NoObserver:
    def limited(self, limit: str, decision: Decision) -> None:
        return None

    def breaker(self, provider: str, state: BreakerState) -> None:
        return None


@dataclass(frozen=True)
class GuardConfig:
    """What the guards need: the topology's limits and breakers, and a few tunables."""

    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    breakers: Mapping[str, BreakerPolicy] = field(default_factory=dict)
    prefix: str = DEFAULT_PREFIX
    idempotency_ttl: float = DEFAULT_TTL
    lock_ttl: float = DEFAULT_LOCK_TTL

    @classmethod
    def from_topology(cls, topology: Topology, settings: object | None = None) -> GuardConfig:
        """Limits from the topology; tunables from settings where they exist (the proposed
        GROWBIN_GUARD_PREFIX, _IDEMPOTENCY_TTL and _LOCK_TTL), else the defaults here."""
        return cls(
            rate_limits=topology.rate_limits,
            breakers=topology.breakers,
            prefix=str(getattr(settings, "guard_prefix", None) or DEFAULT_PREFIX),
            idempotency_ttl=float(getattr(settings, "guard_idempotency_ttl", None) or DEFAULT_TTL),
            lock_ttl=float(getattr(settings, "guard_lock_ttl", None) or DEFAULT_LOCK_TTL),
        )


class Guards:
    """The limiter, breakers and idempotency store of one process, on one Redis."""

    def __init__(
        self, store: GuardStore, config: GuardConfig, observer: GuardObserver | None = None
    ) -> None:
        self.store = store
        self.config = config
        self.observer: GuardObserver = observer or NoObserver()
        self.limiter = RateLimiter(store, config.rate_limits)
        self.breakers = Breakers(store, config.breakers)
        self.idempotency = IdempotencyStore(
            store, ttl=config.idempotency_ttl, lock_ttl=config.lock_ttl
        )

    @classmethod
    def from_url(
        cls, url: str, config: GuardConfig, observer: GuardObserver | None = None
    ) -> Guards:
        return cls(GuardStore.from_url(url, prefix=config.prefix), config, observer)

    def for_provider(self, provider: str, model: str | None = None) -> ProviderGuard:
        return ProviderGuard(
            provider=provider,
            model=model,
            limit=self.limiter.limit_for(provider, model),
            limiter=self.limiter,
            breaker=self.breakers.get(provider),
            idempotency=self.idempotency,
            observer=self.observer,
        )


@dataclass
class ProviderGuard:
    """The guards for one provider and model (any of them may be absent: not configured)."""

    provider: str
    model: str | None
    limit: str | None
    limiter: RateLimiter
    breaker: CircuitBreaker | None
    idempotency: IdempotencyStore | None
    observer: GuardObserver = field(default_factory=NoObserver)

    def call(
        self,
        fn: Callable[[], T],
        *,
        key: str | None,
        dump: Callable[[T], str],
        load: Callable[[str], T],
    ) -> T:
        """Run ``fn`` under the guards. ``key`` names the request's content; within a task it
        is scoped by the task id to make the idempotency key (outside a task: none)."""
        scope = current_operation()
        name = None if key is None else f"{self.provider}:{self.model or '-'}:{scope or '-'}:{key}"
        slot: Slot | None = None
        if name is not None and scope is not None and self.idempotency is not None:
            slot = self.idempotency.claim(name)
            if slot.done:
                assert slot.result is not None
                return load(slot.result)
        try:
            result = self._guarded(fn, name)
            if slot is not None:
                slot.save(dump(result))
            return result
        finally:
            if slot is not None:
                slot.release()  # frees the claim after a failure; a no-op once saved

    def _guarded(self, fn: Callable[[], T], waiter: str | None) -> T:
        breaker = self.breaker
        try:
            permit = breaker.allow() if breaker is not None else None
        except BreakerOpen:
            self._tell("breaker", self.provider, BreakerState.OPEN)
            raise
        if permit is not None and permit.probe:
            self._tell("breaker", self.provider, BreakerState.HALF_OPEN)
        reported = False
        try:
            if self.limit is not None:
                decision = self.limiter.acquire(self.limit, waiter)
                self._tell("limited", self.limit, decision)
                if not decision.allowed:
                    raise self.limiter.refusal(self.limit, decision)
            try:
                result = fn()
            except Exception as exc:
                reported = True
                self._record(permit, failed=is_outage(exc))
                if getattr(exc, "status", None) == 429 and self.limit is not None:
                    self.limiter.hold(self.limit, retry_after_of(exc) or DEFAULT_429_HOLD)
                raise
            reported = True
            self._record(permit, failed=False)
            return result
        finally:
            if not reported and breaker is not None and permit is not None:
                breaker.release(permit)  # throttled before the call: the probe is not used

    def _record(self, permit: Permit | None, *, failed: bool) -> None:
        if self.breaker is not None and permit is not None:
            self._tell("breaker", self.provider, self.breaker.record(permit, failed=failed))

    def _tell(self, event: str, name: str, value: Any) -> None:
        try:
            getattr(self.observer, event)(name, value)
        except Exception:
            logger.exception("guard observer %s failed on %s", type(self.observer).__name__, event)


def request_key(*parts: str | bytes) -> str:
    """A short, stable name for a request's content (what makes two calls the same call)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:32]


class GuardedVisionClassifier:
    """A :class:`VisionClassifier` whose calls go through the guards.

    The request key is the image and the hint: a redelivered classify task asking about the
    same photo is paid for once while the result is kept.
    """

    def __init__(self, inner: VisionClassifier, guard: ProviderGuard) -> None:
        self.inner = inner
        self.guard = guard

    def classify(self, image_jpeg: bytes, *, hint: str | None = None) -> Classification:
        return self.guard.call(
            lambda: self.inner.classify(image_jpeg, hint=hint),
            key="vision:" + request_key(image_jpeg, hint or ""),
            dump=Classification.model_dump_json,
            load=Classification.model_validate_json,
        )


class GuardedTextGenerator:
    """A :class:`TextGenerator` whose calls go through the guards (key: the whole prompt)."""

    def __init__(self, inner: TextGenerator, guard: ProviderGuard) -> None:
        self.inner = inner
        self.guard = guard

    def guidance(
        self,
        classification: Classification,
        rules: Mapping[str, Any] | BaseModel,
        *,
        language: str = "ko",
    ) -> Guidance:
        rules_json = (
            rules.model_dump_json()
            if isinstance(rules, BaseModel)
            else json.dumps(rules, sort_keys=True, ensure_ascii=False, default=str)
        )
        return self.guard.call(
            lambda: self.inner.guidance(classification, rules, language=language),
            key="text:" + request_key(classification.model_dump_json(), rules_json, language),
            dump=Guidance.model_dump_json,
            load=Guidance.model_validate_json,
        )
