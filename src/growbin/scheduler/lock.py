"""The leader lock and the fenced tick claims, in Redis.

The lock is one key holding the active scheduler's token, set only when free (``SET ... PX``
in a script) and renewed or released only by its holder (Lua compare-and-extend,
compare-and-delete). The lock alone
cannot stop a doubled tick: a scheduler paused past its lock's expiry would wake up and send
what the new one already sent. So every send is first *claimed* in Redis, in one script that
checks the lock is still ours and that the entry's last run is still the one we know, and only
then moves it forward. A paused scheduler's claim fails; a new scheduler reads the last runs
when it takes over, so it goes on from where the old one stopped.
"""

from __future__ import annotations

import enum
import os
import socket
import uuid
from typing import Any

import redis

# Take a free lock, or our own back (after a step down on a Redis error it may still be ours).
ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if not holder then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
if holder == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: lock, last-runs hash. ARGV: token, entry, the last run we know ('' for none), new.
CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return -1
end
local current = redis.call('HGET', KEYS[2], ARGV[2]) or ''
if current ~= ARGV[3] then
    return 0
end
if ARGV[4] == '' then
    redis.call('HDEL', KEYS[2], ARGV[2])
else
    redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
end
return 1
"""


class Claim(enum.Enum):
    CLAIMED = 1
    MOVED = 0  # another scheduler ran this entry since we last looked
    NOT_LEADER = -1


def new_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLock:
    def __init__(
        self, client: redis.Redis, namespace: str, ttl: float, token: str | None = None
    ) -> None:
        self.client = client
        self.lock_key = f"{namespace}:lock"
        self.runs_key = f"{namespace}:last-run"
        self.ttl_ms = int(ttl * 1000)
        self.token = token or new_token()
        self._acquire: Any = client.register_script(ACQUIRE)
        self._renew: Any = client.register_script(RENEW)
        self._release: Any = client.register_script(RELEASE)
        self._claim: Any = client.register_script(CLAIM)

    def acquire(self) -> bool:
        return bool(self._acquire(keys=[self.lock_key], args=[self.token, self.ttl_ms]))

    def renew(self) -> bool:
        return bool(self._renew(keys=[self.lock_key], args=[self.token, self.ttl_ms]))

    def release(self) -> bool:
        return bool(self._release(keys=[self.lock_key], args=[self.token]))

    def holder(self) -> str | None:
        value = self.client.get(self.lock_key)
        return None if value is None else _text(value)

    def last_runs(self) -> dict[str, str]:
        raw: dict[Any, Any] = self.client.hgetall(self.runs_key)
        return {_text(k): _text(v) for k, v in raw.items()}

    def claim(self, entry: str, known: str, new: str) -> Claim:
        """Move ``entry``'s last run from ``known`` to ``new`` if we lead and it is unchanged."""
        result = self._claim(
            keys=[self.lock_key, self.runs_key], args=[self.token, entry, known, new]
        )
        return Claim(int(result))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
