"""The checks a worker makes before Celery's handler: which messages are no runnable task."""

from __future__ import annotations

import pickle

import pytest
from celery.exceptions import InvalidTaskError, NotRegistered
from kombu.exceptions import ContentDisallowed, DecodeError
from kombu.message import Message
from tests.unit.runtime.kombu_messages import celery_headers, message

from growbin.runtime.deadletter import NOT_RUNNABLE, DeathReason
from growbin.runtime.task_message import classify, diagnose

KNOWN = {"growbin.demo.add"}
ACCEPTED = "json"


def check(msg: Message) -> tuple[DeathReason, BaseException] | None:
    problem = diagnose(msg, KNOWN, ACCEPTED)
    return None if problem is None else (problem.reason, problem.error)


def test_a_valid_protocol_2_task_goes_on_to_celery():
    assert check(message()) is None


def test_a_protocol_1_task_with_its_name_in_the_body_goes_on_to_celery():
    body = b'{"task": "growbin.demo.add", "id": "t-1", "args": [2, 3], "kwargs": {}}'
    assert check(message(body, headers={})) is None


def test_celerys_hybrid_body_with_args_and_kwargs_goes_on_to_celery():
    assert check(message(b'{"args": [2, 3], "kwargs": {}}')) is None


def test_a_body_that_is_not_json_is_undecodable_and_says_what_it_is_not():
    reason, error = check(message(b'{"not": json,,'))

    assert reason is DeathReason.UNDECODABLE
    assert isinstance(error, DecodeError)
    assert "'application/json'" in str(error)
    assert "Expecting value" in str(error)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-python-serialize", pickle.dumps(((2, 3), {}, {}))),
        ("application/x-yaml", b"- [2, 3]\n- {}\n- {}\n"),
    ],
)
def test_pickle_and_yaml_are_refused_as_content_disallowed(content_type, body):
    reason, error = check(message(body, content_type=content_type, content_encoding="binary"))

    assert reason is DeathReason.CONTENT_DISALLOWED
    assert isinstance(error, ContentDisallowed)
    assert content_type in str(error) and "json" in str(error)


def test_text_without_celery_headers_is_malformed_and_names_both_problems():
    reason, error = check(message(b"hello", headers={}, content_type="text/plain"))

    assert reason is DeathReason.MALFORMED
    assert isinstance(error, InvalidTaskError)
    assert "no 'task' header" in str(error)
    assert "'text/plain' is not accepted" in str(error)


def test_a_json_object_without_celery_headers_is_malformed():
    reason, error = check(message(b'{"item": "bottle"}', headers={}))

    assert reason is DeathReason.MALFORMED
    assert "an object, not a protocol-1 task" in str(error)


def test_a_message_without_headers_or_content_type_is_malformed():
    reason, error = check(message(b"\x80\x01", {}, content_type=None, content_encoding="binary"))

    assert reason is DeathReason.MALFORMED
    assert "its body is 2 bytes of raw data" in str(error)


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        (celery_headers(id=None), "has no 'id' header"),
        (celery_headers(id=42), "an invalid (42) 'id' header"),
        (celery_headers(task=["growbin.demo.add"]), "the 'task' header is ['growbin.demo.add']"),
        (celery_headers(task=""), "the 'task' header is ''"),
    ],
)
def test_missing_or_invalid_celery_headers_are_malformed(headers, named):
    reason, error = check(message(headers=headers))

    assert reason is DeathReason.MALFORMED
    assert named in str(error)


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        (b"[1]", "a list of 1 item"),
        (b"[[], {}]", "a list of 2 items"),
        (b'"text"', "text"),
        (b"null", "null"),
        (b'[{"a": 1}, {}, {}]', "args is an object"),
        (b"[[], [], {}]", "kwargs is a list of 0 items"),
        (b"[[], {}, 7]", "embed is a number"),
        (b'{"item": "bottle"}', "an object without 'args'"),
        (b'{"kwargs": {}}', "an object without 'args'"),
        (b'{"args": [], "kwargs": []}', "'kwargs' is a list of 0 items"),
        (b'{"args": 1, "kwargs": {}}', "'args' is a number"),
    ],
)
def test_a_json_body_of_the_wrong_shape_is_malformed(body, shape):
    reason, error = check(message(body))

    assert reason is DeathReason.MALFORMED
    assert f"wrong shape ({shape})" in str(error)


def test_an_unknown_task_name_is_unregistered_only_when_the_message_is_otherwise_valid():
    reason, error = check(message(headers=celery_headers(task="growbin.demo.nope")))
    assert reason is DeathReason.UNREGISTERED
    assert isinstance(error, NotRegistered)

    # a wrong body is the more basic problem: no deploy would make it run
    reason, _ = check(message(b"[1]", headers=celery_headers(task="growbin.demo.nope")))
    assert reason is DeathReason.MALFORMED


def test_only_messages_no_worker_could_ever_run_are_not_runnable():
    assert DeathReason.UNREGISTERED not in NOT_RUNNABLE
    assert {DeathReason.UNDECODABLE, DeathReason.CONTENT_DISALLOWED, DeathReason.MALFORMED} == (
        NOT_RUNNABLE
    )


def test_celerys_own_exceptions_map_to_the_same_reasons():
    assert classify(ContentDisallowed("pickle")) is DeathReason.CONTENT_DISALLOWED
    assert classify(NotRegistered("x")) is DeathReason.UNREGISTERED
    assert classify(InvalidTaskError("x")) is DeathReason.MALFORMED
    assert classify(DecodeError("x")) is DeathReason.UNDECODABLE
