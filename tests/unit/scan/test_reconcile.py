"""The stall bound each topology gives a scan, and how a dead letter names its scan."""

import pytest

from growbin.scan.pipeline import failure_cause, scan_id_of
from growbin.scan.reconcile import STALL_GRACE, _duration, _task_args, stall_bound, step_bound
from growbin.settings import load_settings
from growbin.topology import loader


@pytest.mark.parametrize(
    ("preset", "expected"), [("production", 2820.0), ("pipeline", 4650.0), ("slo", 3000.0)]
)
def test_each_preset_bounds_how_long_a_scan_may_go_without_progress(preset, expected):
    topology = loader.load(preset).topology

    assert stall_bound(topology, load_settings(env="test")) == expected


def test_a_step_bound_adds_every_attempt_the_backoff_and_the_deferral():
    topology = loader.load("pipeline").topology

    # vision_analysis: TTL 300, time limit 60, 5 retries, backoff_max 240, max defer 900
    assert step_bound(topology, "growbin.scan.classify", 900.0) == 6 * 360 + 5 * 240 + 900
    # the longest step is preprocess on user_input: TTL 600, time limit 300, 3 retries whose
    # wait is the breaker's 30 s reset (longer than its 20 s backoff)
    preprocess = step_bound(topology, "growbin.scan.preprocess", 900.0)
    assert preprocess == 4 * 900 + 3 * 30 + 900
    assert stall_bound(topology, load_settings(env="test")) == preprocess + STALL_GRACE


def test_a_queue_without_a_ttl_gives_no_bound_so_no_scan_is_called_stalled():
    topology = loader.load("pipeline").topology
    queues = dict(topology.queues)
    queues["vision_analysis"] = queues["vision_analysis"].model_copy(update={"message_ttl": None})
    unbounded = topology.model_copy(update={"queues": queues})

    assert step_bound(unbounded, "growbin.scan.classify", 900.0) is None
    assert stall_bound(unbounded, load_settings(env="test")) is None


@pytest.mark.parametrize(
    ("body", "scan_id"),
    [
        ('[["0f3a"], {}, {}]', "0f3a"),  # the first step gets the scan id
        ('[[{"scan_id": "0f3a", "phash": "x"}], {}, {}]', "0f3a"),
        ('{"args": ["0f3a"]}', "0f3a"),  # protocol 1
        ("[[], {}, {}]", None),
        ("[[42], {}, {}]", None),
        ("not json", None),
    ],
)
def test_a_dead_letter_body_names_its_scan(body, scan_id):
    assert scan_id_of(_task_args(body)) == scan_id


def test_the_cause_names_the_exception_or_what_rabbitmq_said():
    assert failure_cause("builtins.KeyError", "'item'", "failed") == (
        "failed: builtins.KeyError: 'item'"
    )
    assert failure_cause("", "", "expired") == "failed: RabbitMQ dead-lettered it (expired)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (725, "12m 5s"), (12000, "3h 20m"), (187200, "2d 4h"), (-3, "0s")],
)
def test_a_stall_says_how_long_in_words_a_person_reads(seconds, text):
    assert _duration(seconds) == text
