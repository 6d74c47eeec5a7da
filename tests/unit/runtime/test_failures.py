import random

import httpx
import psycopg
import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import exc as sa_exc

from growbin.errors import FatalTaskError, ServiceUnavailableError, TransientTaskError
from growbin.runtime.failures import backoff_delay, is_transient
from growbin.topology.model import RetryPolicy


def _status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://provider.test/v1/chat/completions")
    return httpx.HTTPStatusError(
        "provider error", request=request, response=httpx.Response(status, request=request)
    )


@pytest.mark.parametrize(
    "exc",
    [
        TransientTaskError("503"),
        SoftTimeLimitExceeded(),
        ConnectionResetError("peer reset"),
        TimeoutError("read timed out"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        _status_error(429),
        _status_error(500),
        _status_error(503),
    ],
)
def test_errors_whose_cause_may_pass_are_retried(exc):
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        FatalTaskError("bad image"),
        ValueError("unknown category"),
        KeyError("item"),
        TypeError("wrong type"),
        _status_error(400),
        _status_error(401),
        _status_error(404),
    ],
)
def test_errors_that_a_retry_cannot_fix_are_dead_lettered_at_once(exc):
    assert not is_transient(exc)


def test_backoff_without_jitter_doubles_up_to_the_cap():
    policy = RetryPolicy(max_retries=6, backoff_base=1, backoff_max=10, jitter=False)
    assert [backoff_delay(policy, n) for n in range(6)] == [1, 2, 4, 8, 10, 10]


def test_jittered_delays_stay_within_half_and_full_and_never_shrink_between_attempts():
    policy = RetryPolicy(max_retries=5, backoff_base=2, backoff_max=1000, jitter=True)
    rng = random.Random(7)
    for _ in range(200):
        delays = [backoff_delay(policy, n, rng) for n in range(5)]
        for n, d in enumerate(delays):
            full = 2 * 2**n
            assert full / 2 <= d <= full
        assert delays == sorted(delays)


def test_jitter_spreads_the_retries_of_many_tasks():
    policy = RetryPolicy(backoff_base=4, jitter=True)
    rng = random.Random(1)
    assert len({round(backoff_delay(policy, 1, rng), 3) for _ in range(50)}) > 40


def _sqlalchemy_error(kind: type, orig: BaseException) -> BaseException:
    return kind("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "exc",
    [
        ServiceUnavailableError("Redis", "redis://127.0.0.1:6390/0", "Connection refused"),
        ServiceUnavailableError("PostgreSQL", "postgresql+psycopg://db/growbin", "refused"),
        _sqlalchemy_error(sa_exc.OperationalError, psycopg.OperationalError("server closed")),
        _sqlalchemy_error(sa_exc.InterfaceError, psycopg.InterfaceError("connection closed")),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        redis.ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused."),
        redis.TimeoutError("Timeout reading from socket"),
        redis.BusyLoadingError("Redis is loading the dataset in memory"),
    ],
)
def test_an_outage_of_our_own_redis_or_postgresql_is_retried(exc):
    assert is_transient(exc)


def test_a_database_error_that_a_retry_cannot_fix_is_not_retried():
    error = _sqlalchemy_error(
        sa_exc.IntegrityError, psycopg.errors.UniqueViolation("duplicate key value")
    )
    assert not is_transient(error)
