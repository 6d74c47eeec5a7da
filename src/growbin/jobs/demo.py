"""Seed 003's demo tasks: add, multiply and sum_multiply, for the solo, chain and group patterns."""

from __future__ import annotations

import time

from celery import Celery


def register(app: Celery) -> None:
    @app.task(name="growbin.demo.add", shared=False)  # type: ignore[untyped-decorator]
    def add(a: float, b: float, delay: float = 0.0) -> float:
        # The seed's add sleeps 20 s to show a slow task; callers choose the delay here.
        if delay:
            time.sleep(delay)
        return a + b

    @app.task(name="growbin.demo.multiply", shared=False)  # type: ignore[untyped-decorator]
    def multiply(a: float, b: float) -> float:
        return a * b

    @app.task(name="growbin.demo.sum_multiply", shared=False)  # type: ignore[untyped-decorator]
    def sum_multiply(total: float, *numbers: float) -> list[float]:
        # Chain step: the previous result (a sum) times each number.
        return [total * n for n in numbers]
