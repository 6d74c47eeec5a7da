"""Idempotency keys: a side effect (a paid call, a write) happens once per key, across workers.

RabbitMQ delivers at least once: a worker that dies after the effect but before its ack gets
its message redelivered. Here the first run claims the key (``SET NX`` with a lock TTL), makes
the effect and stores its result under the key (``done``, kept ``ttl`` seconds); a redelivered
run finds ``done`` and returns the stored result instead of repeating the effect. A run that
finds the key still in progress is deferred (:class:`StillInProgress`) to reuse the result. A
run that died while in progress leaves a lock that expires after ``lock_ttl``; then another
run may claim the key (the effect may then happen twice: there is no knowing whether the dead
run's effect took place, so choose ``lock_ttl`` above the effect's longest duration).

    with idempotent(store, f"refund:{order_id}") as slot:
        if slot.done:
            return json.loads(slot.result)
        result = pay_back(order_id)
        slot.save(json.dumps(result))
    return result

Values are ``P|<claim token>`` while in progress and ``D|<result>`` when done.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from growbin.guard.errors import StillInProgress
from growbin.guard.store import GuardStore

DEFAULT_TTL = 3600.0  # seconds a result is kept: longer than any redelivery or retry chain
DEFAULT_LOCK_TTL = 120.0  # seconds a claim holds: longer than the effect may take

_CLAIM = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'claimed', ''}
end
if string.sub(v, 1, 2) == 'D|' then return {'done', string.sub(v, 3)} end
return {'busy', tostring(redis.call('PTTL', KEYS[1]))}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class Slot:
    """One claim on a key: ``done`` with the stored ``result``, or ours to fill with save()."""

    store: IdempotencyStore
    key: str
    done: bool
    result: str | None = None
    ttl: float = DEFAULT_TTL
    _claim: str | None = field(default=None, repr=False)
    saved: bool = False

    def save(self, result: str) -> None:
        """Store the result (the effect happened) so that later runs return it."""
        if self.done:
            raise RuntimeError(f"idempotency key {self.key} is already done; do not save again")
        self.store.store.call(
            "idempotency store",
            "set",
            self.store.store.idempotency_key(self.key),
            "D|" + result,
            px=max(1, round(self.ttl * 1000)),
        )
        self.saved, self.result = True, result

    def release(self) -> None:
        """Give the key up without a result (the effect failed): another run may try now."""
        if self._claim is not None and not self.saved:
            self.store.store.run(
                "idempotency store",
                _RELEASE,
                [self.store.store.idempotency_key(self.key)],
                [self._claim],
            )
            self._claim = None


class IdempotencyStore:
    def __init__(
        self,
        store: GuardStore,
        *,
        ttl: float = DEFAULT_TTL,
        lock_ttl: float = DEFAULT_LOCK_TTL,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.lock_ttl = lock_ttl

    def claim(self, key: str, *, ttl: float | None = None, lock_ttl: float | None = None) -> Slot:
        """Claim ``key``: a Slot to fill, a done Slot, or :class:`StillInProgress`."""
        lock = lock_ttl if lock_ttl is not None else self.lock_ttl
        claim = f"P|{uuid.uuid4().hex}"
        status, value = self.store.run(
            "idempotency store",
            _CLAIM,
            [self.store.idempotency_key(key)],
            [claim, max(1, round(lock * 1000))],
        )
        keep = ttl if ttl is not None else self.ttl
        if status == "done":
            return Slot(self, key, done=True, result=str(value), ttl=keep)
        if status == "busy":
            raise StillInProgress(key, retry_after=max(0.05, int(value) / 1000))
        return Slot(self, key, done=False, ttl=keep, _claim=claim)

    def peek(self, key: str) -> str | None:
        """The stored result if the key is done, else None (claims nothing)."""
        value = self.store.call("idempotency store", "get", self.store.idempotency_key(key))
        if isinstance(value, str) and value.startswith("D|"):
            return value[2:]
        return None

    def forget(self, key: str) -> None:
        self.store.call("idempotency store", "delete", self.store.idempotency_key(key))


@contextmanager
def idempotent(
    store: IdempotencyStore, key: str, *, ttl: float | None = None, lock_ttl: float | None = None
) -> Iterator[Slot]:
    """Claim ``key`` for the block; an error in the block (or no save) releases it."""
    slot = store.claim(key, ttl=ttl, lock_ttl=lock_ttl)
    if slot.done:
        yield slot
        return
    try:
        yield slot
    finally:
        slot.release()  # a no-op once saved
