"""A worker's progress: held messages that never move make it stalled; idle or busy never."""

from __future__ import annotations

from growbin.runtime.progress import (
    ProgressRecord,
    ProgressReporter,
    ProgressTracker,
    progress_file,
    read_progress_file,
    stall_threshold,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_held_messages_that_never_move_stop_the_progress_clock():
    clock = Clock()
    tracker = ProgressTracker(clock)
    tracker.sample(["a", "b"], accepted=2)
    clock.now += 300
    assert tracker.sample(["a", "b"], accepted=2) == 1000.0  # the same two, nothing accepted


def test_a_finished_or_newly_started_task_or_an_idle_worker_is_progress():
    clock = Clock()
    tracker = ProgressTracker(clock)
    tracker.sample(["a", "b"], accepted=2)
    clock.now = 1100
    assert tracker.sample(["b", "c"], accepted=2) == 1100  # a went away
    clock.now = 1200
    assert tracker.sample(["b", "c"], accepted=3) == 1200  # the pool took one
    clock.now = 1300
    assert tracker.sample([], accepted=3) == 1300  # holds nothing


def test_the_stall_threshold_is_the_hard_time_limit_plus_a_minute_unless_configured():
    assert stall_threshold(None, 120) == 180
    assert stall_threshold(None, None) == 660
    assert stall_threshold(30, 120) == 30


def record(reserved: int, last_progress: float, stall_after: float = 180) -> ProgressRecord:
    return ProgressRecord("ai@n1", "ai", 7, reserved, 0, last_progress, stall_after, 1000)


def test_a_record_is_stalled_only_while_it_holds_messages_past_its_threshold():
    assert record(8, last_progress=0).stalled(now=181)
    assert not record(8, last_progress=0).stalled(now=179)
    assert not record(0, last_progress=0).stalled(now=10_000)
    assert record(0, last_progress=0).without_progress(now=10_000) == 0


def test_the_reporter_writes_a_file_a_probe_on_the_host_can_read_without_redis(tmp_path):
    seen: list[ProgressRecord] = []
    reporter = ProgressReporter(
        worker="ai@n1",
        profile="ai",
        stall_after=0.01,
        directory=tmp_path,
        redis_url="redis://127.0.0.1:1/0",  # nothing listens: publishing is skipped, not fatal
        sample=lambda: (["a", "b"], 2, 5),
        on_record=seen.append,
    )
    first = reporter.report()
    reporter.tracker.last_progress -= 1  # a second without progress, past the threshold
    second = reporter.report()
    on_disk = read_progress_file(progress_file(tmp_path, "ai@n1"))
    assert (first.reserved, first.active) == (2, 2)
    assert on_disk == second and second.stalled()
    assert seen == [first, second]
    reporter.stop()
    assert read_progress_file(progress_file(tmp_path, "ai@n1")) is None  # gone with the worker
