"""The flags the overview puts on a queue."""

from growbin.api.console.overview import queue_flags
from growbin.ops.status import ProfileStatus, Progress, QueueStatus


def queue(**fields):
    defaults = {
        "name": "q.work",
        "role": "work",
        "messages": 10,
        "ready": 10,
        "unacked": 0,
        "consumers": 2,
        "publish_rate": 1.0,
        "deliver_rate": 1.0,
        "ack_rate": 1.0,
        "alert_depth": 100,
    }
    return QueueStatus(**{**defaults, **fields})


def profile(progress: str, queues=("q.work",)):
    return ProfileStatus("p", 1, ["p@h"], list(queues), progress=progress)


def test_a_healthy_queue_has_no_flag():
    assert queue_flags(queue(), 1000, [profile(Progress.OK)]) == []


def test_full_over_alert_stalled_and_no_consumers_are_each_flagged():
    assert queue_flags(queue(messages=1000), 1000, []) == ["full", "over alert"]
    assert queue_flags(queue(), None, [profile(Progress.STALLED)]) == ["stalled"]
    assert queue_flags(queue(), None, [profile(Progress.STALLED, ("other",))]) == []
    assert queue_flags(queue(consumers=0), None, []) == ["no consumers"]
    # a dead-letter queue is read by people, not consumed: no consumers is normal there
    assert queue_flags(queue(role="dead-letter", consumers=0), None, []) == []


def test_a_queue_missing_from_the_broker_says_only_that():
    assert queue_flags(queue(exists=False, messages=None), 10, []) == ["missing"]
