"""Why a publish failed, as the reason a 503 gives."""

from __future__ import annotations

import pytest
from amqp.exceptions import MessageNacked
from kombu.exceptions import OperationalError

from growbin.api.publishing import PublishRefusedError, refusal_reason, refused_as_error
from growbin.runtime.celery_app import UnroutedTaskError


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
