from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from growbin.guard.breaker import BreakerState, CircuitBreaker
from growbin.guard.errors import BreakerOpen
from growbin.topology.model import BreakerPolicy


def breaker(store, failures=3, window=10.0, reset_after=0.3) -> CircuitBreaker:
    return CircuitBreaker(
        store, "openai", BreakerPolicy(failures=failures, window=window, reset_after=reset_after)
    )


def fail(cb: CircuitBreaker, times: int) -> list[BreakerState]:
    return [cb.record(cb.allow(), failed=True) for _ in range(times)]


def test_the_breaker_opens_after_the_configured_failures_and_then_fails_fast(store):
    cb = breaker(store, failures=3, reset_after=5.0)
    assert fail(cb, 3) == [BreakerState.CLOSED, BreakerState.CLOSED, BreakerState.OPEN]
    with pytest.raises(BreakerOpen) as info:
        cb.allow()
    assert 4.5 < info.value.retry_after <= 5.0
    assert "3 outage failures within 10s" in str(info.value)
    status = cb.status()
    assert status.state is BreakerState.OPEN and status.times_opened == 1


def test_failures_older_than_the_window_do_not_count(store):
    cb = breaker(store, failures=3, window=0.3)
    fail(cb, 2)
    time.sleep(0.35)
    assert fail(cb, 2) == [BreakerState.CLOSED, BreakerState.CLOSED]
    assert cb.status().failures == 2


def test_successes_do_not_open_it_and_count_for_nothing_while_closed(store):
    cb = breaker(store, failures=2)
    for _ in range(5):
        assert cb.record(cb.allow(), failed=False) is BreakerState.CLOSED
    assert cb.status().failures == 0


def test_when_half_open_exactly_one_of_many_concurrent_callers_gets_the_probe(store):
    cb = breaker(store, failures=1, reset_after=0.2)
    fail(cb, 1)
    time.sleep(0.25)

    def try_call(_: int) -> bool:
        try:
            return cb.allow().probe
        except BreakerOpen:
            return False

    with ThreadPoolExecutor(max_workers=16) as pool:
        probes = list(pool.map(try_call, range(32)))
    assert probes.count(True) == 1
    assert cb.status().probe_in_flight


def test_a_successful_probe_closes_the_breaker(store):
    cb = breaker(store, failures=1, reset_after=0.2)
    fail(cb, 1)
    time.sleep(0.25)
    probe = cb.allow()
    assert probe.probe
    assert cb.record(probe, failed=False) is BreakerState.CLOSED
    assert not cb.allow().probe  # closed: plain calls again


def test_a_failed_probe_opens_it_again_for_another_reset_period(store):
    cb = breaker(store, failures=1, reset_after=0.2)
    fail(cb, 1)
    time.sleep(0.25)
    probe = cb.allow()
    assert cb.record(probe, failed=True) is BreakerState.OPEN
    with pytest.raises(BreakerOpen) as info:
        cb.allow()
    assert 0.1 < info.value.retry_after <= 0.2
    assert cb.status().times_opened == 2


def test_a_probe_whose_worker_died_frees_the_probe_after_the_reset_period(store):
    cb = breaker(store, failures=1, reset_after=0.2)
    fail(cb, 1)
    time.sleep(0.25)
    assert cb.allow().probe  # and never reported: its worker died
    with pytest.raises(BreakerOpen):
        cb.allow()
    time.sleep(0.25)
    assert cb.allow().probe


def test_a_released_probe_lets_the_next_caller_probe_at_once(store):
    cb = breaker(store, failures=1, reset_after=5.0)
    fail(cb, 1)
    store.client.hset(store.breaker_key("openai"), "open_until", 0)  # skip the wait
    probe = cb.allow()
    cb.release(probe)
    assert cb.allow().probe


def test_reset_closes_an_open_breaker(store):
    cb = breaker(store, failures=1, reset_after=60.0)
    fail(cb, 1)
    cb.reset()
    assert cb.status().state is BreakerState.CLOSED
    cb.allow()
