"""Seed 003's demo tasks: add, multiply and sum_multiply, for the solo, chain and group patterns."""

from __future__ import annotations

import time

from celery import Celery

# A sleeping task holds a worker slot (on q.api in the production preset, beside map_search and
# oauth_verify): whatever a message asks for, no example task sleeps longer than this. The API
# refuses longer delays (growbin.api.tasks.MAX_DELAY) and caps each key's delayed tasks.
MAX_DELAY = 5.0


def register(app: Celery) -> None:
    @app.task(name="growbin.demo.add", shared=False)  # type: ignore[untyped-decorator]
    def add(a: float, b: float, delay: float = 0.0) -> float:
        # The seed's add sleeps 20 s to show a slow task; callers choose a (short) delay here.
        if delay:
            time.sleep(min(max(0.0, float(delay)), MAX_DELAY))
        return a + b

    @app.task(name="growbin.demo.multiply", shared=False)  # type: ignore[untyped-decorator]
    def multiply(a: float, b: float) -> float:
        return a * b

    @app.task(name="growbin.demo.sum_multiply", shared=False)  # type: ignore[untyped-decorator]
    def sum_multiply(total: float, *numbers: float) -> list[float]:
        # Chain step: the previous result (a sum) times each number.
        return [total * n for n in numbers]
