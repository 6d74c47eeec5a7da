"""What the console shows of a dead letter: secrets redacted, tracebacks bounded, the scan."""

import json

from growbin.api.console import letters
from growbin.db.models import DeadLetterRecord


def record(**fields):
    defaults = {
        "dead_letter_id": "abcdef123456",
        "task_name": "growbin.jobs.oauth_verify",
        "body": json.dumps([["x"], {}, {}]),
        "body_base64": False,
        "headers": {},
    }
    return DeadLetterRecord(**{**defaults, **fields})


def test_credentials_are_redacted_by_name_and_by_shape():
    shown = letters.redact(
        {
            "access_token": "ya29.secret",
            "password": "hunter2",
            "nested": {"Authorization": "Bearer abc.def"},
            "note": "called with key gb_0123abcd_" + "s" * 30 + " and Bearer t0k3n",
            "url": "amqp://user:pa55@rabbit:5672/prod",
            "count": 3,
            "empty_token": "",
        }
    )
    assert shown["access_token"] == shown["password"] == letters.REDACTED
    assert shown["nested"]["Authorization"] == letters.REDACTED
    assert "gb_0123abcd_" not in shown["note"] and "t0k3n" not in shown["note"]
    assert shown["url"] == "amqp://user:****@rabbit:5672/prod"
    assert shown["count"] == 3
    assert shown["empty_token"] == ""  # nothing to hide: showing it is empty helps


def test_arguments_come_from_the_body_redacted_and_a_binary_body_is_not_decoded():
    body = json.dumps([["scan1"], {"access_token": "secret", "user": "kim"}, {}])
    found = letters.arguments(record(body=body))
    assert found.readable
    assert found.args == ["scan1"]
    assert found.kwargs == {"access_token": letters.REDACTED, "user": "kim"}
    assert not letters.arguments(record(body="AAEC", body_base64=True)).readable
    assert not letters.arguments(record(body="not json")).readable


def test_a_scan_steps_dead_letter_names_its_scan_and_other_tasks_name_none():
    step = record(task_name="growbin.scan.classify", body=json.dumps([[{"scan_id": "s1"}], {}, {}]))
    first = record(task_name="growbin.scan.preprocess", body=json.dumps([["s2"], {}, {}]))
    assert letters.scan_of(step) == "s1"
    assert letters.scan_of(first) == "s2"
    assert letters.scan_of(record(body=json.dumps([["s3"], {}, {}]))) is None


def test_a_long_traceback_keeps_its_start_and_its_end():
    lines = ["Traceback (most recent call last):"] + [f"  frame {i}" for i in range(500)]
    shown = letters.bounded_traceback("\n".join([*lines, "ValueError: the cause"]))
    assert shown.cut_lines > 0
    assert shown.text.startswith("Traceback (most recent call last):")
    assert shown.text.endswith("ValueError: the cause")
    assert f"... {shown.cut_lines} lines left out ..." in shown.text
    short = letters.bounded_traceback("Traceback:\n  x\nKeyError: 1")
    assert (short.text, short.cut_lines) == ("Traceback:\n  x\nKeyError: 1", 0)


def test_the_death_header_leaves_its_traceback_to_the_traceback_section():
    death = {"reason": "failed", "traceback": "Traceback...", "exception_message": "Bearer zz"}
    shown = letters.death_header(record(headers={"x-growbin-death": death}))
    assert shown["reason"] == "failed"
    assert shown["traceback"] == "(shown under Traceback)"
    assert "zz" not in shown["exception_message"]
