"""Filters, ages, the queue the tools read, the lock key and the list's columns."""

from datetime import UTC, datetime, timedelta

import pytest

from growbin.db.models import DeadLetterRecord, DeadLetterState
from growbin.ops.deadletters.errors import DeadLetterError
from growbin.ops.deadletters.filters import DeadLetterFilter, parse_age, parse_state
from growbin.ops.deadletters.lock import lock_key
from growbin.ops.deadletters.selection import dead_letter_queue
from growbin.ops.deadletters.view import age, exception_line, summary
from growbin.topology import loader
from growbin.topology.model import QueueRole


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("45s", timedelta(seconds=45)),
        ("1w", timedelta(weeks=1)),
        (" 1.5H ", timedelta(minutes=90)),
    ],
)
def test_ages_are_a_number_and_a_unit(text, expected):
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "30", "m", "3x", "-1h", "1 day"])
def test_an_age_without_a_known_unit_is_refused_with_examples(text):
    with pytest.raises(DeadLetterError, match="30m, 2h, 1d"):
        parse_age(text)


def test_states_and_reasons_are_checked_against_the_known_ones():
    assert parse_state("Dropped") is DeadLetterState.DROPPED
    with pytest.raises(DeadLetterError, match="queued, replayed, purged, dropped"):
        parse_state("lost")
    with pytest.raises(DeadLetterError, match="delivery-limit"):
        DeadLetterFilter.from_options(reason="timeout")


def test_a_filter_from_options_converts_each_value():
    flt = DeadLetterFilter.from_options(
        task="growbin.scan.*",
        reason="Expired",
        states=["queued", "dropped"],
        older_than="2h",
        exception="",
    )

    assert flt == DeadLetterFilter(
        task="growbin.scan.*",
        reason="expired",
        states=(DeadLetterState.QUEUED, DeadLetterState.DROPPED),
        older_than=timedelta(hours=2),
    )
    assert flt.describe() == (
        "task=growbin.scan.* reason=expired state=queued,dropped older-than=2:00:00"
    )
    assert not flt.is_empty()
    assert DeadLetterFilter.from_options().is_empty()


def test_the_tools_read_the_topology_dead_letter_queue_by_default():
    topology = loader.load("production").topology

    assert dead_letter_queue(topology) == ("q.dlq", QueueRole.DEAD_LETTER)
    assert dead_letter_queue(topology, "q.unroutable") == ("q.unroutable", QueueRole.UNROUTABLE)


def test_a_work_queue_is_not_accepted_as_the_dead_letter_queue():
    topology = loader.load("production").topology

    with pytest.raises(DeadLetterError, match=r"use one of q\.dlq, q\.unroutable"):
        dead_letter_queue(topology, "q.batch")


def test_a_topology_without_a_dead_letter_queue_is_refused_with_the_fix():
    topology = loader.load("production").topology
    queues = {k: v for k, v in topology.queues.items() if v.role is not QueueRole.DEAD_LETTER}

    with pytest.raises(DeadLetterError, match="role: dead-letter"):
        dead_letter_queue(topology.model_copy(update={"queues": queues}))


def test_the_lock_key_is_stable_per_vhost_and_queue_and_fits_a_bigint():
    key = lock_key("/", "q.dlq")

    assert key == lock_key("/", "q.dlq")
    assert key != lock_key("other", "q.dlq")
    assert key != lock_key("/", "q.unroutable")
    assert -(2**63) <= key < 2**63


def test_ages_in_the_list_are_short():
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)

    assert age(now - timedelta(seconds=5), now) == "5s"
    assert age(now - timedelta(minutes=12, seconds=30), now) == "12m"
    assert age(now - timedelta(hours=3), now) == "3h"
    assert age(now - timedelta(days=2, hours=5), now) == "2d"
    assert age(None, now) == "-"


def test_the_exception_column_shows_the_short_type_and_a_bounded_message():
    record = DeadLetterRecord(
        dead_letter_id="a" * 32,
        exception_type="growbin.scan.providers.VisionTimeout",
        exception_message="x" * 100,
        dead_lettered_at=datetime(2025, 3, 1, tzinfo=UTC),
    )

    line = exception_line(record, width=40)

    assert line.startswith("VisionTimeout: xxx")
    assert len(line) == 40
    assert summary(record)["dead_lettered_at"] == "2025-03-01T00:00:00+00:00"


def test_superseded_is_a_known_state_that_all_includes_but_the_default_does_not():
    from growbin.ops.deadletters.selection import OPEN_STATES, REPLAYABLE_STATES

    assert parse_state("Superseded") is DeadLetterState.SUPERSEDED
    assert DeadLetterState.SUPERSEDED in DeadLetterFilter.from_options(states=["all"]).states
    assert DeadLetterState.SUPERSEDED not in OPEN_STATES
    assert DeadLetterState.SUPERSEDED not in REPLAYABLE_STATES
