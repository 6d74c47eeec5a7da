"""A small key-value store with expiry: Redis in production, a dict in the embedded default."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis

from growbin.errors import ServiceUnavailableError
from growbin.settings import mask_url


class KeyValue(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl: float | None = None) -> None: ...
    def add(self, key: str, value: str, ttl: float | None = None) -> bool:
        """Set only if absent; True when this call set it."""
        ...

    def incr(self, key: str, amount: int = 1) -> int: ...
    def delete(self, *keys: str) -> None: ...


class RedisKV:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=3, socket_timeout=5
        )

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # A refused or dropped connection and a server that stopped answering are one thing to
        # a caller: Redis is unavailable for now. Tasks retry ServiceUnavailableError with their
        # route's backoff (runtime.failures.is_transient); the API answers 503.
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ServiceUnavailableError(
                "Redis", mask_url(self.url), str(exc) or type(exc).__name__
            ) from exc

    def get(self, key: str) -> str | None:
        value = self._call(self.client.get, key)
        return None if value is None else str(value)

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._call(self.client.set, key, value, px=int(ttl * 1000) if ttl else None)

    def add(self, key: str, value: str, ttl: float | None = None) -> bool:
        done = self._call(self.client.set, key, value, nx=True, px=int(ttl * 1000) if ttl else None)
        return bool(done)

    def incr(self, key: str, amount: int = 1) -> int:
        return int(self._call(self.client.incrby, key, amount))

    def delete(self, *keys: str) -> None:
        if keys:
            self._call(self.client.delete, *keys)


class MemoryKV:
    """For one process (the embedded default); thread-safe, expiry checked on read."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (value, time.monotonic() + ttl if ttl else None)

    def add(self, key: str, value: str, ttl: float | None = None) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (value, time.monotonic() + ttl if ttl else None)
            return True

    def incr(self, key: str, amount: int = 1) -> int:
        with self._lock:
            value = int(self._live(key) or 0) + amount
            expires = self._data.get(key, ("", None))[1]
            self._data[key] = (str(value), expires)
            return value

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)
