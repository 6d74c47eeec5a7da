"""Tasks for the outage tests, loaded into real workers with GROWBIN_TASK_MODULES.

The worker's Redis (GROWBIN_REDIS_URL: result backend and key-value store) is a private one
that the test stops; the tasks report what happened to them in the shared test Redis
(GROWBIN_TEST_COUNTER_URL), which stays up.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

from growbin.runtime.kv import RedisKV


def _counter() -> redis.Redis:
    return redis.Redis.from_url(os.environ["GROWBIN_TEST_COUNTER_URL"])


def register(app: Celery) -> None:
    @app.task(name="growbin.outage.nap", shared=False)
    def nap(key: str, n: int, seconds: float) -> int:
        time.sleep(seconds)
        _counter().hincrby(f"ran:{key}", str(n), 1)
        return n

    @app.task(name="growbin.outage.remember", shared=False)
    def remember(key: str, n: int) -> int:
        # a scan step's use of the key-value store: it raises ServiceUnavailableError while
        # the worker's Redis is down. The first attempt waits for the test to say the outage
        # has begun, so that it meets it.
        counter = _counter()
        deadline = time.monotonic() + 60
        while not counter.exists(f"down:{key}") and time.monotonic() < deadline:
            time.sleep(0.1)
        kv = RedisKV(os.environ["GROWBIN_REDIS_URL"])
        counter.hincrby(f"tries:{key}", str(n), 1)
        kv.set(f"outage:{key}:{n}", "done", ttl=600)
        _counter().hincrby(f"ran:{key}", str(n), 1)
        return n

    @app.task(name="growbin.outage.hang", shared=False)
    def hang(key: str, seconds: float) -> None:
        # a call that never returns, as a socket with no timeout: the threads pool has no
        # time limit to end it
        _counter().incr(f"hanging:{key}")
        time.sleep(seconds)
