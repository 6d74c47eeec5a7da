"""A result-backend failure after a task's body still ends its delivery (ack or requeue)."""

from __future__ import annotations

import pytest
import redis
from celery.exceptions import Ignore, Reject

from growbin.runtime.settlement import guard_tracer, mark_settled
from growbin.runtime.task_base import GrowbinTask


class FakeTask:
    name = "growbin.testing.step"


def backend_down(*_args, **_kwargs):
    raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")


def outcome(result) -> BaseException:
    retval, info = result[0], result[1]
    assert info is not None  # Celery reads a set info as "failed": the request handler runs
    exc = retval.exception
    return getattr(exc, "exc", exc)  # as Request.on_success unwraps it


def test_a_failed_result_write_of_an_unsettled_task_requeues_its_message():
    guarded = guard_tracer(FakeTask(), backend_down)
    exc = outcome(guarded("t-1", (), {}, {}))
    assert isinstance(exc, Reject) and exc.requeue is True
    assert "result backend write failed" in str(exc.reason)
    assert "ConnectionError" in str(exc.reason)


def test_a_failed_result_write_after_a_published_retry_or_dead_letter_acks_its_message():
    guarded = guard_tracer(FakeTask(), backend_down)
    mark_settled("t-2")
    assert isinstance(outcome(guarded("t-2", (), {}, {})), Ignore)
    # the ledger forgets the id once its trace ended: a redelivery is judged afresh
    assert isinstance(outcome(guarded("t-2", (), {}, {})), Reject)


def test_a_normal_trace_and_celerys_own_reject_pass_through_untouched():
    def ok(uuid, args, kwargs, request=None):
        return ("result", None, 0.1, "'result'")

    def rejects(uuid, args, kwargs, request=None):
        raise Reject("delivery refused", requeue=False)

    assert guard_tracer(FakeTask(), ok)("t-3", (), {}, {}) == ("result", None, 0.1, "'result'")
    with pytest.raises(Reject):
        guard_tracer(FakeTask(), rejects)("t-4", (), {}, {})


def test_a_growbin_task_wraps_the_tracer_celery_gives_it_once():
    task = GrowbinTask()
    task.__trace__ = backend_down
    wrapped = task.__trace__
    assert wrapped is not backend_down and getattr(wrapped, "growbin_guarded", False)
    task.__trace__ = wrapped
    assert task.__trace__ is wrapped  # not wrapped twice
    task.__trace__ = None
    assert task.__trace__ is None  # Celery's "build it again" marker still works
