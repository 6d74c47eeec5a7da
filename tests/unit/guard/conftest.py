"""Guard unit tests run their Lua scripts on the real Redis (db 15), under a prefix of their own.

The scripts are the logic under test; an imitation of Redis would test the imitation. A missing
Redis skips these tests locally and fails them in CI (CI=true).
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from growbin.guard.store import GuardStore

REDIS_TEST_URL = os.environ.get("GROWBIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def store():
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis is not reachable at {REDIS_TEST_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: these tests need Redis)")
        pytest.skip(reason)
    finally:
        client.close()
    prefix = f"growbin-test-{uuid.uuid4().hex[:12]}"
    guard_store = GuardStore.from_url(REDIS_TEST_URL, prefix=prefix)
    yield guard_store
    for key in guard_store.client.scan_iter(f"{guard_store.prefix}:*", count=10_000):
        guard_store.client.delete(key)
    guard_store.close()
