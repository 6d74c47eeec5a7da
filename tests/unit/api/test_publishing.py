"""Why a publish failed, as the reason a 503 gives."""

from __future__ import annotations

import pytest
from amqp.exceptions import MessageNacked
from celery.signals import before_task_publish
from kombu.exceptions import OperationalError

from growbin.api.publishing import (
    Destination,
    PublishRefusedError,
    explain,
    last_destination,
    refusal_reason,
    refused_as_error,
    remember_destinations,
)
from growbin.api.result_store import ResultStoreUnavailableError
from growbin.runtime.celery_app import UnroutedTaskError
from growbin.service_hints import start_service_hint
from growbin.settings import Environment
from growbin.topology import loader


def raised_from(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer from cause
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (raised_from(OperationalError(""), MessageNacked()), "broker_nack"),
        (
            raised_from(OperationalError("refused"), ConnectionRefusedError(111, "x")),
            "broker_unavailable",
        ),
        (raised_from(OperationalError("timed out"), TimeoutError()), "broker_timeout"),
        (UnroutedTaskError("no route"), "unrouted"),
        (ValueError("odd"), "publish_failed"),
    ],
)
def test_the_cause_of_a_failed_publish_names_the_reason(error, reason):
    assert refusal_reason(error) == reason


def test_any_failure_inside_the_guard_becomes_a_refusal():
    with pytest.raises(PublishRefusedError) as info, refused_as_error():
        raise raised_from(OperationalError(""), MessageNacked())
    assert info.value.reason == "broker_nack"
    assert "Nothing was queued" in str(info.value)


PIPELINE = loader.load("pipeline").topology
TO_USER_INPUT = Destination("growbin.scan.preprocess", "growbin", "input.preprocess")


def test_a_nack_names_the_full_queue_its_limit_and_what_to_do():
    nack = raised_from(OperationalError(""), MessageNacked())
    refused = explain(nack, topology=PIPELINE, destination=TO_USER_INPUT)
    text = str(refused)
    assert refused.reason == "broker_nack"
    assert refused.queue == "user_input"
    assert "queue user_input is full (max_length 5000, overflow reject-publish)" in text
    assert "growbin worker --profile storage" in text
    assert "growbin topology apply" in text


def test_the_destination_of_the_last_publish_in_this_thread_is_remembered():
    remember_destinations()
    before_task_publish.send(
        sender="growbin.scan.preprocess", exchange="growbin", routing_key="input.preprocess"
    )
    assert last_destination() == TO_USER_INPUT


def test_an_unreachable_result_store_is_named_as_redis_not_the_broker():
    down = ResultStoreUnavailableError("redis://127.0.0.1:1/0", "Connection refused", "start it")
    refused = explain(raised_from(RuntimeError("publish"), down))
    assert refused.reason == "result_store_unavailable"
    assert "Redis" in str(refused) and "broker" not in str(refused)


@pytest.mark.parametrize("env", [Environment.STAGING, Environment.PRODUCTION])
def test_outside_development_no_fix_hint_suggests_a_developer_command(env):
    outage = raised_from(OperationalError("refused"), ConnectionRefusedError(111, "x"))
    down = ResultStoreUnavailableError(
        "redis://r:6379/0", "refused", start_service_hint(env, "Redis", "GROWBIN_REDIS_URL")
    )
    for error in (outage, down):
        text = str(explain(error, env=env))
        assert "make services" not in text
        assert "Fix:" in text


def test_in_development_the_fix_hint_may_name_make_services():
    outage = raised_from(OperationalError("refused"), ConnectionRefusedError(111, "x"))
    assert "make services" in str(explain(outage, env=Environment.DEVELOPMENT))
