"""Tasks for the metrics tests, loaded into real workers with GROWBIN_TASK_MODULES.

Their names fall under the execution topology's ``growbin.testing.*`` route.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

from growbin.errors import TransientTaskError


def register(app: Celery) -> None:
    @app.task(name="growbin.testing.fails_once", shared=False)
    def fails_once(key: str) -> str:
        # the first attempt fails with a transient error, so it is retried once, then succeeds
        client = redis.Redis.from_url(os.environ["GROWBIN_REDIS_URL"])
        if client.incr(f"attempts:{key}") == 1:
            raise TransientTaskError(f"upstream answered 503 for {key}")
        return "ok"
