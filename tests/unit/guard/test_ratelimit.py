from __future__ import annotations

import itertools
import time
from bisect import bisect_left

import pytest

from growbin.guard.errors import Throttled
from growbin.guard.ratelimit import RateLimiter, rate_limit_log
from growbin.topology.model import RateLimit

NAME = "openai.gpt-5"


def limiter(store, rate=5, per=1.0, burst=1) -> RateLimiter:
    return RateLimiter(store, {NAME: RateLimit(rate=rate, per=per, burst=burst)})


def test_a_limit_lets_its_burst_through_then_refuses_with_the_time_to_the_next_slot(store):
    rl = limiter(store, rate=5, per=1.0, burst=2)  # interval 1 / (5 - 2 + 1) = 0.25 s
    decisions = [rl.acquire(NAME, f"caller-{i}") for i in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert 0.2 < decisions[2].retry_after <= 0.25
    assert decisions[0].retry_after == 0


def test_no_window_of_per_seconds_ever_holds_more_than_rate_calls(store):
    rl = limiter(store, rate=5, per=1.0, burst=2)
    allowed: list[float] = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        if rl.acquire(NAME, "poller").allowed:
            allowed.append(time.monotonic())
        time.sleep(0.003)
    worst = max(bisect_left(allowed, t + 1.0) - i for i, t in enumerate(allowed))
    assert worst <= 5
    assert len(allowed) >= 9  # 2 at once, then one every 0.25 s: the limit is used, not starved


def test_refused_callers_get_wake_hints_one_interval_apart_and_keep_their_place(store):
    rl = limiter(store, rate=5, per=1.0, burst=1)  # interval 0.2 s
    assert rl.acquire(NAME, "first").allowed
    hints = [rl.acquire(NAME, f"waiter-{i}").retry_after for i in range(4)]
    gaps = [b - a for a, b in itertools.pairwise(hints)]
    assert all(abs(gap - 0.2) < 0.01 for gap in gaps)
    # asked again before its turn, a waiter keeps its place instead of queueing twice
    again = rl.acquire(NAME, "waiter-2").retry_after
    assert abs((hints[2] - again) - 0.0) < 0.05
    assert rl.state(NAME).waiting == 4


def test_check_raises_throttled_with_the_hint_and_names_the_limit(store):
    rl = limiter(store, rate=1, per=10.0)
    rl.check(NAME)
    with pytest.raises(Throttled) as info:
        rl.check(NAME)
    assert 9 < info.value.retry_after <= 10
    assert "openai.gpt-5 (1 per 10s)" in str(info.value)
    assert "rate_limits" in str(info.value)


def test_a_429_hold_refuses_every_caller_until_it_has_passed(store):
    rl = limiter(store, rate=100, per=1.0, burst=10)
    rl.hold(NAME, 0.5)
    refused = rl.acquire(NAME, "anyone")
    assert not refused.allowed and 0.4 < refused.retry_after <= 0.5
    time.sleep(0.55)
    assert rl.acquire(NAME, "anyone").allowed


def test_the_state_shows_free_calls_the_next_slot_and_the_counts(store):
    rl = limiter(store, rate=10, per=1.0, burst=3)
    fresh = rl.state(NAME)
    assert (fresh.tokens, fresh.next_free, fresh.allowed, fresh.throttled) == (3, 0, 0, 0)
    for i in range(4):
        rl.acquire(NAME, f"c{i}")
    state = rl.state(NAME)
    assert state.tokens == 0 and 0 < state.next_free <= 1 / 8
    assert (state.allowed, state.throttled, state.waiting) == (3, 1, 1)
    assert state.key == f"{store.prefix}:rl:openai:gpt-5"


def test_each_refusal_is_counted_per_minute_in_the_rate_limit_log(store):
    rl = limiter(store, rate=1, per=60.0)
    for i in range(4):
        rl.acquire(NAME, f"c{i}")
    [row] = rate_limit_log(store)
    assert (row.limit, row.count) == (NAME, 3)
    assert row.minute % 60 == 0 and abs(row.minute - time.time()) < 120


def test_a_limit_is_found_by_provider_and_model_else_by_provider(store):
    rl = RateLimiter(store, {"openai.gpt-5": RateLimit(rate=100), "kakao": RateLimit(rate=10)})
    assert rl.limit_for("openai", "gpt-5") == "openai.gpt-5"
    assert rl.limit_for("openai", "gpt-4o-mini") is None
    assert rl.limit_for("kakao", "local") == "kakao"
    with pytest.raises(KeyError, match=r"known: kakao, openai\.gpt-5"):
        rl.acquire("openai.gpt-4o-mini")


def test_reset_forgets_the_state_of_a_limit(store):
    rl = limiter(store, rate=1, per=60.0)
    rl.acquire(NAME)
    assert not rl.acquire(NAME).allowed
    rl.reset(NAME)
    assert rl.acquire(NAME).allowed
