"""Tasks for the execution tests, loaded into real workers with GROWBIN_TASK_MODULES.

They report what happened to them in Redis (the URL in GROWBIN_REDIS_URL), so a test can count
attempts and executions from outside the worker.
"""

from __future__ import annotations

import os
import signal
import time

import redis
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from growbin.errors import TransientTaskError


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["GROWBIN_REDIS_URL"])


def register(app: Celery) -> None:
    @app.task(name="growbin.testing.flaky", shared=False)
    def flaky(key: str) -> str:
        r = _redis()
        r.rpush(f"times:{key}", time.time())
        if not r.exists(f"fixed:{key}"):
            raise TransientTaskError(f"upstream answered 503 for {key}")
        return "ok"

    @app.task(name="growbin.testing.fatal", shared=False)
    def fatal(key: str) -> None:
        _redis().rpush(f"times:{key}", time.time())
        raise ValueError(f"item {key!r} is not a known category")

    @app.task(name="growbin.testing.stuck", shared=False)
    def stuck(key: str) -> None:
        _redis().rpush(f"times:{key}", time.time())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                time.sleep(0.1)
            except SoftTimeLimitExceeded:
                # ignore the soft limit, so that the hard one has to kill us
                continue

    @app.task(name="growbin.testing.record", shared=False)
    def record(key: str, n: int) -> int:
        _redis().hincrby(f"execs:{key}", str(n), 1)
        time.sleep(0.005)
        return n

    @app.task(name="growbin.testing.poison", shared=False)
    def poison(key: str) -> None:
        _redis().rpush(f"times:{key}", time.time())
        os.kill(os.getpid(), signal.SIGKILL)

    @app.task(name="growbin.testing.expire", shared=False)
    def expire() -> None:
        raise AssertionError("nothing consumes q.idle: this task should expire, not run")

    # journal and scheduler tests (tests/integration/journal, tests/integration/scheduler)
    @app.task(name="growbin.testing.nap", shared=False)
    def nap(key: str, n: int, seconds: float) -> int:
        time.sleep(seconds)
        _redis().hincrby(f"execs:{key}", str(n), 1)
        return n

    @app.task(name="growbin.testing.tick", shared=False)
    def tick() -> None:
        raise AssertionError("the beat tests read these messages from the queue, unconsumed")
