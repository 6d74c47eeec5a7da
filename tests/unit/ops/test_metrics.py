"""Task metrics hooks, the setters other components call, and the metric names."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from growbin.errors import FatalTaskError
from growbin.ops import metrics as m
from growbin.ops.metrics_hooks import MetricsHooks
from growbin.runtime.celery_app import create_app
from growbin.runtime.hooks import TaskEvent, install_hooks
from growbin.runtime.registry import ALL_TASKS
from growbin.scan.providers.errors import (
    ProviderOutputError,
    ProviderRateLimitedError,
    ProviderTimeoutError,
)
from growbin.settings import Settings
from growbin.topology import loader

PRODUCTION = loader.load("production").topology


@pytest.fixture
def fresh():
    m.reset_metrics()
    yield m.metrics()
    m.reset_metrics()


def value(target: m.GrowbinMetrics, name: str, **labels: str) -> float:
    found = target.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def event(task_name="growbin.scan.classify", **extra) -> TaskEvent:
    fields = {
        "task_id": "t-1",
        "task_name": task_name,
        "queue": "q.ai",
        "routing_key": "ai.analyze",
        "worker": "ai@node-1",
        "retries": 0,
    }
    return TaskEvent(**{**fields, **extra})


def test_each_task_event_counts_under_its_status_with_the_seed_labels():
    target = m.GrowbinMetrics(CollectorRegistry())
    hooks = MetricsHooks(PRODUCTION, target)
    hooks.received(event())
    hooks.started(event())
    hooks.retried(event(runtime=0.2, error="TimeoutError: slow"))
    hooks.succeeded(event(runtime=0.3))
    labels = {"worker": "ai@node-1", "task_name": "growbin.scan.classify"}
    counts = {s: value(target, "celery_tasks_total", status=s, **labels) for s in m.TASK_STATUSES}
    assert counts == {
        "received": 1,
        "started": 1,
        "succeeded": 1,
        "failed": 0,
        "retried": 1,
        "dead_lettered": 0,
    }
    timed = {**labels, "queue": "q.ai"}
    assert value(target, "celery_task_duration_seconds_count", **timed) == 2
    assert value(target, "celery_task_duration_seconds_sum", **timed) == pytest.approx(0.5)
    assert value(target, "celery_task_duration_seconds_bucket", le="0.5", **timed) == 2


def test_a_failure_of_a_task_whose_queue_dead_letters_counts_as_dead_lettered_too():
    target = m.GrowbinMetrics(CollectorRegistry())
    hooks = MetricsHooks(PRODUCTION, target)
    hooks.failed(event(runtime=0.1, error="ValueError: bad"))
    labels = {"worker": "ai@node-1", "task_name": "growbin.scan.classify"}
    assert value(target, "celery_tasks_total", status="failed", **labels) == 1
    assert value(target, "celery_tasks_total", status="dead_lettered", **labels) == 1


def test_a_failure_of_a_task_without_a_dead_letter_route_is_only_failed():
    target = m.GrowbinMetrics(CollectorRegistry())
    hooks = MetricsHooks(PRODUCTION, target)
    hooks.failed(event(task_name="someone.elses.task", queue=None, runtime=None))
    labels = {"worker": "ai@node-1", "task_name": "someone.elses.task"}
    assert value(target, "celery_tasks_total", status="failed", **labels) == 1
    assert value(target, "celery_tasks_total", status="dead_lettered", **labels) == 0


def test_an_event_without_a_worker_is_labelled_with_this_processs_identity(fresh):
    m.set_identity("batch@node-9")
    try:
        MetricsHooks(PRODUCTION).received(event(worker=None))
    finally:
        m.set_identity("test")
    labels = {"worker": "batch@node-9", "task_name": "growbin.scan.classify"}
    assert value(fresh, "celery_tasks_total", status="received", **labels) == 1


def _boom(app):
    @app.task(name="growbin.demo.boom", shared=False)
    def boom():
        raise FatalTaskError("bad input")


def test_hooks_on_a_real_worker_count_a_success_and_a_dead_lettered_failure():
    settings = Settings(
        broker_url=SecretStr("memory://"), result_backend_url=SecretStr("cache+memory://")
    )
    app = create_app(settings, loader.load("production"), registrars=(*ALL_TASKS, _boom))
    app.conf.broker_transport_options = {"polling_interval": 0.01}
    target = m.GrowbinMetrics(CollectorRegistry())
    adapter = install_hooks(app, [MetricsHooks.for_app(app, target)])

    def count(task: str, status: str) -> float:
        total = 0.0
        for family in target.registry.collect():
            for s in family.samples:
                if s.name == "celery_tasks_total" and s.labels["task_name"] == task:
                    total += s.value if s.labels["status"] == status else 0
        return total

    try:
        with start_worker(app, pool="threads", perform_ping_check=False, queues=["q.api"]):
            app.send_task("growbin.demo.add", args=(1, 2))
            app.send_task("growbin.demo.boom")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (
                count("growbin.demo.add", "succeeded") < 1
                or count("growbin.demo.boom", "failed") < 1
            ):
                time.sleep(0.02)
    finally:
        adapter.disconnect()
        app.close()
    assert count("growbin.demo.add", "received") == 1
    assert count("growbin.demo.add", "succeeded") == 1
    assert count("growbin.demo.boom", "failed") == 1
    assert count("growbin.demo.boom", "dead_lettered") == 1


def test_the_setters_for_the_journal_guards_and_providers_update_their_metrics(fresh):
    m.set_identity("ai@node-1")
    try:
        m.set_wal_pending(7)
        m.observe_wal_sync_delay(3.5)
        m.record_provider_call("gpt-5", "ok")
        m.record_cache_hit("gpt-5")
        m.set_ratelimit_tokens("openai:gpt-5", 42)
        m.set_breaker_state("openai", m.BreakerState.OPEN)
    finally:
        m.set_identity("test")
    assert value(fresh, "wal_pending_tasks", worker="ai@node-1") == 7
    assert value(fresh, "wal_sync_delay_seconds_count", worker="ai@node-1") == 1
    assert value(fresh, "wal_sync_delay_seconds_bucket", worker="ai@node-1", le="5.0") == 1
    assert value(fresh, "gpt_api_calls_total", model="gpt-5", status="ok") == 1
    assert value(fresh, "gpt_cache_hits_total", model="gpt-5") == 1
    assert value(fresh, "growbin_ratelimit_tokens", key="openai:gpt-5") == 42
    assert value(fresh, "growbin_breaker_state", provider="openai") == 2


def test_a_setter_never_raises_into_its_caller(fresh, caplog):
    m.set_wal_pending("many")  # type: ignore[arg-type]
    assert "a metric update failed" in caplog.text


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (None, "ok"),
        (ProviderRateLimitedError("openai", "POST", "http://x", "429", status=429), "rate_limited"),
        (ProviderTimeoutError("openai", "POST", "http://x", "timed out"), "timeout"),
        (ProviderOutputError("openai", "POST", "http://x", "not JSON"), "invalid_output"),
        (RuntimeError("boom"), "error"),
    ],
)
def test_a_provider_call_outcome_is_one_of_a_few_stable_statuses(error, status):
    assert m.provider_call_status(error) == status


def test_a_provider_call_block_counts_its_outcome_and_reraises(fresh):
    with m.provider_call("gpt-4o-mini"):
        pass
    with pytest.raises(ProviderTimeoutError), m.provider_call("gpt-4o-mini"):
        raise ProviderTimeoutError("openai", "POST", "http://x", "timed out")
    assert value(fresh, "gpt_api_calls_total", model="gpt-4o-mini", status="ok") == 1
    assert value(fresh, "gpt_api_calls_total", model="gpt-4o-mini", status="timeout") == 1


def test_the_registry_exposes_the_seed_metric_names():
    names = m.GrowbinMetrics(CollectorRegistry()).names()
    assert {
        "celery_tasks_total",
        "celery_task_duration_seconds_bucket",
        "wal_pending_tasks",
        "wal_sync_delay_seconds_bucket",
        "gpt_api_calls_total",
        "gpt_cache_hits_total",
        "growbin_ratelimit_tokens",
        "growbin_breaker_state",
    } <= names
    assert m.TASK_DURATION_BUCKETS == (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300)


def test_the_guard_observer_turns_limiter_and_breaker_news_into_gauges(fresh):
    from growbin.guard.breaker import BreakerState
    from growbin.guard.ratelimit import Decision

    observer = m.MetricsGuardObserver()
    observer.limited("openai.gpt-5", Decision(allowed=True, retry_after=0, tokens=4))
    observer.breaker("openai", BreakerState.HALF_OPEN)
    assert value(fresh, "growbin_ratelimit_tokens", key="openai.gpt-5") == 4
    assert value(fresh, "growbin_breaker_state", provider="openai") == 1
    observer.breaker("openai", BreakerState.OPEN)
    assert value(fresh, "growbin_breaker_state", provider="openai") == 2


def test_a_worker_progress_sample_sets_its_reserved_stall_seconds_and_stalled_gauges(fresh):
    m.set_worker_progress("ai@n1", reserved=8, without_progress=312.44, stalled=True)
    m.set_worker_progress("api@n2", reserved=3, without_progress=0.0, stalled=False)
    assert value(fresh, "growbin_worker_reserved_tasks", worker="ai@n1") == 8
    assert value(fresh, "growbin_worker_seconds_without_progress", worker="ai@n1") == 312.4
    assert value(fresh, "growbin_worker_stalled", worker="ai@n1") == 1
    assert value(fresh, "growbin_worker_stalled", worker="api@n2") == 0
