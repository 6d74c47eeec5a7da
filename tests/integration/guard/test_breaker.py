"""A provider that fails every call: the breaker opens, calls fail fast, a probe closes it."""

from __future__ import annotations

import statistics
import time

import pytest
from celery.result import AsyncResult
from tests.integration.guard.conftest import TOPOLOGY, runs
from tests.integration.guard.tasks import spec_for

from growbin.guard.breaker import BreakerState, CircuitBreaker
from growbin.guard.store import GuardStore
from growbin.topology.model import BreakerPolicy

pytestmark = pytest.mark.integration

POLICY = {"failures": 5, "window": 60, "reset_after": 4}


def finish(results: list[AsyncResult]) -> list[str]:
    for res in results:
        res.get(timeout=60, propagate=False)
    return [res.state for res in results]


def test_the_breaker_opens_after_the_failures_then_fails_fast_and_a_probe_closes_it(
    env, app, r, prefix, fake_openai, start_worker, redis_url
):
    spec = spec_for(fake_openai, prefix, breakers={"openai": POLICY})
    store = GuardStore.from_url(redis_url, prefix=prefix)
    breaker = CircuitBreaker(store, "openai", BreakerPolicy(**POLICY))
    worker = start_worker("work", TOPOLOGY, "--concurrency=1", "--pool=threads", env=env)
    worker.wait_for_log("ready", timeout=60)
    fake_openai.mode = "error500"
    fake_openai.latency = 0.5  # a failing provider that also answers slowly

    def batch(first: int, count: int) -> tuple[list[dict], list[str]]:
        """Send ``count`` tasks, wait for them; their runs and final states."""
        sent = [
            app.send_task("growbin.testing.guarded_text", args=(spec, n))
            for n in range(first, first + count)
        ]
        states = finish(sent)
        numbers = set(range(first, first + count))
        return [run for run in runs(r, prefix) if run["n"] in numbers], states

    failing, states = batch(0, 5)
    assert states == ["FAILURE"] * 5
    assert breaker.status().state is BreakerState.OPEN
    calls_while_failing = fake_openai.call_count
    fast, states = batch(100, 10)
    assert states == ["FAILURE"] * 10
    assert fake_openai.call_count == calls_while_failing  # not one call while open

    fake_openai.mode, fake_openai.latency = "ok", 0.0
    wait = breaker.status().retry_after
    time.sleep(wait + 0.2)
    recovered, states = batch(200, 5)
    status = breaker.status()
    store.close()

    before = statistics.mean(run["seconds"] for run in failing)
    after = statistics.mean(run["seconds"] for run in fast)
    print(
        f"\nbreaker {POLICY}: per call {before * 1000:.0f} ms before it opened "
        f"({next(run['outcome'] for run in failing)}), {after * 1000:.1f} ms while open "
        f"({fast[0]['outcome']}), {before / after:.0f}x faster; provider calls "
        f"{calls_while_failing} during the outage; after {wait:.1f}s a probe closed it: "
        f"{[run['outcome'] for run in recovered]}, state {status.state.value}, "
        f"opened {status.times_opened} time(s)"
    )
    assert [run["outcome"] for run in failing] == ["ProviderUnavailableError"] * 5
    assert calls_while_failing == POLICY["failures"]
    assert {run["outcome"] for run in fast} == {"BreakerOpenError"}
    assert before >= 0.4
    assert after < before / 10
    assert states == ["SUCCESS"] * 5
    assert status.state is BreakerState.CLOSED and status.times_opened == 1
    assert fake_openai.call_count == calls_while_failing + 5
