from __future__ import annotations

import pickle
import random

import pytest

from growbin.guard.errors import BreakerOpen, StillInProgress, Throttled
from growbin.runtime.failures import defer_countdown, is_outage, is_transient, retry_countdown
from growbin.scan.providers.errors import (
    ProviderOutputError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from growbin.topology.model import RetryPolicy

URL = "http://provider/v1"


def test_an_open_breaker_is_retried_no_sooner_than_its_probe():
    policy = RetryPolicy(max_retries=3, backoff_base=1, backoff_max=4)
    exc = BreakerOpen("openai", "5 failures", retry_after=25)
    assert retry_countdown(policy, 0, exc, random.Random(1)) == 25
    # a short wait still gets the backoff
    assert 0.5 <= retry_countdown(policy, 0, BreakerOpen("x", "y", retry_after=0.1)) <= 1


def test_an_error_without_a_wait_gets_the_plain_backoff():
    policy = RetryPolicy(max_retries=3, backoff_base=2, backoff_max=60, jitter=False)
    assert retry_countdown(policy, 2, RuntimeError("x")) == 8


@pytest.mark.parametrize(("seconds", "countdown"), [(0.0, 1), (0.2, 1), (1.0, 1), (1.01, 2)])
def test_deferrals_wait_whole_seconds_and_at_least_one(seconds, countdown):
    assert defer_countdown(seconds) == countdown


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (ProviderUnavailableError("openai", "POST", URL, "bad gateway", status=502), True),
        (ProviderUnavailableError("openai", "POST", URL, "connection refused"), True),
        (ProviderTimeoutError("openai", "POST", URL, "no answer"), True),
        (ProviderRateLimitedError("openai", "POST", URL, "slow down", status=429), False),
        (ProviderRejectedError("openai", "POST", URL, "bad", status=400, fix="f"), False),
        (ProviderOutputError("openai", "POST", URL, "not JSON"), False),
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("timed out"), True),
        (ValueError("a bug"), False),
    ],
)
def test_only_5xx_timeouts_and_connection_errors_are_outages(exc, outage):
    assert is_outage(exc) is outage


@pytest.mark.parametrize(
    "exc",
    [
        Throttled("openai.gpt-5", "100 per 60s", retry_after=1.5),
        StillInProgress("openai:gpt-5:t:k", retry_after=2),
        BreakerOpen("openai", "5 failures within 60s", retry_after=3),
    ],
)
def test_guard_errors_are_transient_and_survive_pickling_with_their_wait(exc):
    copy = pickle.loads(pickle.dumps(exc))  # noqa: S301 - as Celery does with its own bytes
    assert is_transient(copy)
    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    assert copy.retry_after == exc.retry_after
