from __future__ import annotations

import pytest
from pydantic import SecretStr

from growbin.fakes.openai_server import FakeOpenAI
from growbin.guard.breaker import BreakerState
from growbin.guard.errors import BreakerOpen, Throttled
from growbin.guard.providers import GuardConfig, GuardedVisionClassifier, Guards
from growbin.guard.scope import operation
from growbin.scan.providers.errors import (
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from growbin.scan.providers.openai_compat import OpenAIConfig, OpenAIVisionClassifier
from growbin.topology.model import BreakerPolicy, RateLimit

URL = "http://fake/v1/chat/completions"


def guards(store, *, rate=None, failures=None) -> Guards:
    config = GuardConfig(
        rate_limits={"openai.m": RateLimit(rate=rate, per=60)} if rate else {},
        breakers={"openai": BreakerPolicy(failures=failures, reset_after=60)} if failures else {},
        prefix=store.prefix,
    )
    return Guards(store, config)


def run(guard, fn, key="req"):
    return guard.call(fn, key=key, dump=str, load=str)


def raising(exc):
    def call():
        raise exc

    return call


def test_within_one_task_a_repeated_call_returns_the_stored_result_without_a_slot(store):
    g = guards(store, rate=1)
    guard = g.for_provider("openai", "m")
    calls = []
    with operation("task-1"):
        assert run(guard, lambda: calls.append(1) or "answer") == "answer"
        # a redelivery of task-1: the limit (1 per minute) is spent, yet nothing is refused
        assert run(guard, lambda: calls.append(1) or "again") == "answer"
    assert calls == [1]
    assert g.limiter.state("openai.m").allowed == 1


def test_another_task_asking_the_same_thing_is_not_deduplicated(store):
    guard = guards(store).for_provider("openai", "m")
    with operation("task-1"):
        run(guard, lambda: "first")
    with operation("task-2"):
        assert run(guard, lambda: "second") == "second"


def test_outside_a_task_nothing_is_stored(store):
    guard = guards(store).for_provider("openai", "m")
    assert run(guard, lambda: "a") == "a"
    assert run(guard, lambda: "b") == "b"


def test_only_outages_count_toward_the_breaker_not_4xx_or_429(store):
    g = guards(store, failures=2)
    guard = g.for_provider("openai", "m")
    refusals = [
        ProviderRejectedError("openai", "POST", URL, "bad request", status=400, fix="fix it"),
        ProviderRateLimitedError("openai", "POST", URL, "slow down", status=429),
    ]
    for error in refusals * 2:
        with pytest.raises(type(error)):
            run(guard, raising(error))
    assert g.breakers["openai"].status().state is BreakerState.CLOSED
    outage = ProviderUnavailableError("openai", "POST", URL, "bad gateway", status=502)
    for _ in range(2):
        with pytest.raises(ProviderUnavailableError):
            run(guard, raising(outage))
    with pytest.raises(BreakerOpen):
        run(guard, lambda: "not called")


def test_a_throttled_call_frees_its_idempotency_claim_and_its_probe(store):
    g = guards(store, rate=1, failures=1)
    guard = g.for_provider("openai", "m")
    run(guard, lambda: "spends the limit", key="other")
    breaker = g.breakers["openai"]
    breaker.record(breaker.allow(), failed=True)  # open
    store.client.hset(store.breaker_key("openai"), "open_until", 0)  # probe due now
    with operation("task-1"), pytest.raises(Throttled):
        run(guard, lambda: "not called")
    assert breaker.allow().probe  # the throttled call did not keep the probe
    with operation("task-1"):
        claim = g.idempotency.claim("openai:m:task-1:req")
    assert not claim.done  # nor the claim


def test_a_429_holds_the_limit_back_for_every_caller(store):
    g = guards(store, rate=100)
    guard = g.for_provider("openai", "m")
    limited = ProviderRateLimitedError("openai", "POST", URL, "quota", status=429, retry_after=5)
    with pytest.raises(ProviderRateLimitedError):
        run(guard, raising(limited))
    decision = g.limiter.acquire("openai.m")
    assert not decision.allowed and 4 < decision.retry_after <= 5


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def test_a_guarded_vision_classifier_calls_the_provider_once_per_task(store, fake):
    inner = OpenAIVisionClassifier(
        OpenAIConfig(base_url=fake.base_url, api_key=SecretStr(fake.api_key))
    )
    classifier = GuardedVisionClassifier(inner, guards(store).for_provider("openai", "gpt-5"))
    with operation("classify-task"):
        first = classifier.classify(b"photo bytes", hint="can")
        again = classifier.classify(b"photo bytes", hint="can")
    assert first == again and first.item == "can"
    assert fake.call_count == 1


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []

    def limited(self, limit, decision):
        self.events.append(("limited", limit, (decision.allowed, decision.tokens)))

    def breaker(self, provider, state):
        self.events.append(("breaker", provider, state))


def test_an_observer_sees_each_decision_with_the_tokens_left_and_breaker_changes(store):
    recorder = Recorder()
    config = GuardConfig(
        rate_limits={"openai.m": RateLimit(rate=3, per=60, burst=2)},
        breakers={"openai": BreakerPolicy(failures=1, reset_after=60)},
        prefix=store.prefix,
    )
    guard = Guards(store, config, recorder).for_provider("openai", "m")
    run(guard, lambda: "ok", key="a")
    outage = ProviderUnavailableError("openai", "POST", URL, "bad gateway", status=503)
    with pytest.raises(ProviderUnavailableError):
        run(guard, raising(outage), key="b")
    with pytest.raises(BreakerOpen):
        run(guard, lambda: "not called", key="c")
    assert recorder.events == [
        ("limited", "openai.m", (True, 1)),
        ("breaker", "openai", BreakerState.CLOSED),
        ("limited", "openai.m", (True, 0)),
        ("breaker", "openai", BreakerState.OPEN),
        ("breaker", "openai", BreakerState.OPEN),
    ]
