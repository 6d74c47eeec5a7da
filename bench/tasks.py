"""The benchmark's tasks, loaded into `growbin worker` with GROWBIN_TASK_MODULES=bench.tasks
and defined the same way for bare Celery (bench.plain_app), so both run the same code."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
_clients: dict[int, redis.Redis] = {}


def client() -> redis.Redis:
    # one connection per pool process: a connection must not cross a fork
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = redis.Redis.from_url(REDIS_URL)
    return _clients[pid]


def fast(key: str, sent_at: float) -> None:
    """A fast-lane task: records how long after its publication it finished."""
    client().rpush(f"bench:{key}:latency", time.time() - sent_at)


def slow(key: str, seconds: float) -> None:
    """Bulk work (2 s) or an external API that hangs (5 s): it waits, as I/O does."""
    time.sleep(seconds)
    client().incr(f"bench:{key}:slow")


def count(key: str) -> None:
    """A no-op that counts itself done, with the first start and the last end."""
    now = time.time()
    pipe = client().pipeline(transaction=False)
    pipe.set(f"bench:{key}:first", now, nx=True)
    pipe.incr(f"bench:{key}:count")
    pipe.set(f"bench:{key}:last", time.time())
    pipe.execute()


FUNCTIONS = {"fast": fast, "bulk": slow, "external": slow, "count": count}


def register(app: Any) -> None:
    """Growbin's registrar: tasks growbin.bench.<name>, routed by the bench topology."""
    for name, function in FUNCTIONS.items():
        app.task(name=f"growbin.bench.{name}", shared=False)(function)
