"""The Redis the guards share: one client, their key names, and Lua scripts run atomically.

Every guard decision is one Lua script, so workers on many machines see one consistent state
and the clock is Redis's own (``TIME``), not each worker's. Redis errors become
:class:`GuardUnavailable` (transient): a guard that cannot decide does not call the provider.
"""

from __future__ import annotations

from typing import Any

import redis

from growbin.guard.errors import GuardUnavailable
from growbin.settings import mask_url

DEFAULT_PREFIX = "growbin"


class GuardStore:
    """A Redis client and a key prefix (tests and tenants use their own prefix)."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX, url: str = "") -> None:
        self.client = client
        self.prefix = prefix
        self.url = url
        self._scripts: dict[str, Any] = {}

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX) -> GuardStore:
        client = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=3, socket_timeout=5
        )
        return cls(client, prefix=prefix, url=mask_url(url))

    # Key names, all in one place.
    def limiter_key(self, name: str) -> str:
        return f"{self.prefix}:rl:{name}"

    def limiter_waiters_key(self, name: str) -> str:
        return f"{self.prefix}:rl:{name}:waiters"

    def limiter_log_key(self, hour: int) -> str:
        return f"{self.prefix}:rl:log:{hour}"

    def breaker_key(self, name: str) -> str:
        return f"{self.prefix}:cb:{name}"

    def breaker_failures_key(self, name: str) -> str:
        return f"{self.prefix}:cb:{name}:failures"

    def breaker_probe_key(self, name: str) -> str:
        return f"{self.prefix}:cb:{name}:probe"

    def idempotency_key(self, key: str) -> str:
        return f"{self.prefix}:idem:{key}"

    def run(self, what: str, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script (cached by Redis after the first call)."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        try:
            return script(keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise GuardUnavailable(what, self.url or "the configured URL", str(exc)) from exc

    def call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One plain Redis command, with the same error translation as :meth:`run`."""
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise GuardUnavailable(what, self.url or "the configured URL", str(exc)) from exc

    def close(self) -> None:
        self.client.close()
