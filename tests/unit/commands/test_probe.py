"""`growbin worker probe`: ready only when the record is recent, its process alive, the worker
connected, consuming every queue of its profile and not stalled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from growbin.commands.probe import main, probe_args
from growbin.runtime.progress import (
    ProgressRecord,
    ProgressReporter,
    consumer_sample,
    probe,
    progress_file,
    write_progress_file,
)

NOW = 10_000.0


def ready(**changes: object) -> ProgressRecord:
    base = ProgressRecord(
        worker="ai@n1",
        profile="ai",
        pid=os.getpid(),
        reserved=0,
        active=0,
        last_progress=NOW - 1,
        stall_after=180,
        updated_at=NOW - 2,
        connected=True,
        queues=("q.ai",),
        consuming=("q.ai",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def check(record: ProgressRecord | None, tmp_path, alive=lambda pid: True):
    return probe(record, path=tmp_path / "x.json", now=NOW, max_age=15, alive=alive)


def test_a_recent_connected_consuming_worker_is_ready(tmp_path):
    result = check(ready(), tmp_path)
    assert result.ok and "consuming q.ai" in result.reason


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (None, "no progress record"),
        (ready(updated_at=NOW - 16), "stopped reporting"),
        (ready(connected=False, consuming=()), "not connected"),
        (ready(connected=None), "does not say whether it is connected"),
        (ready(queues=("q.ai", "q.batch")), "not consuming q.batch"),
        (ready(queues=()), "not consuming any queue"),
        (ready(reserved=3, last_progress=NOW - 181), "stalled"),
    ],
    ids=[
        "no file",
        "stale",
        "disconnected",
        "old record",
        "a queue missing",
        "no queue",
        "stalled",
    ],
)
def test_a_worker_that_is_not_ready_fails_the_probe_with_the_reason(record, reason, tmp_path):
    result = check(record, tmp_path)
    assert not result.ok
    assert reason in result.reason


def test_a_record_whose_process_is_gone_fails_the_probe(tmp_path):
    result = check(ready(pid=4242), tmp_path, alive=lambda pid: pid != 4242)
    assert not result.ok and "4242 no longer exists" in result.reason


def test_a_record_from_before_the_consumer_fields_still_reads(tmp_path):
    path = tmp_path / "old.json"
    data = json.loads(ready().to_json())
    for key in ("connected", "queues", "consuming"):
        del data[key]
    path.write_text(json.dumps(data))
    from growbin.runtime.progress import read_progress_file

    old = read_progress_file(path)
    assert old is not None and old.connected is None and old.queues == ()


class FakeTaskConsumer:
    def __init__(self, consuming: set[str]) -> None:
        self.consuming = consuming

    def consuming_from(self, name: str) -> bool:
        return name in self.consuming


def fake_consumer(connected: bool, consuming: set[str]) -> SimpleNamespace:
    queues = SimpleNamespace(consume_from={"q.ai": object(), "q.batch": object()})
    return SimpleNamespace(
        connection=SimpleNamespace(connected=connected),
        task_consumer=FakeTaskConsumer(consuming),
        app=SimpleNamespace(amqp=SimpleNamespace(queues=queues)),
    )


def test_the_consumer_sample_reads_the_connection_and_the_live_consumer_tags():
    assert consumer_sample(fake_consumer(True, {"q.ai"})) == (True, ["q.ai", "q.batch"], ["q.ai"])
    assert consumer_sample(fake_consumer(False, {"q.ai"})) == (False, ["q.ai", "q.batch"], [])
    assert consumer_sample(None) == (None, [], [])


def test_the_reporter_writes_the_consumer_state_the_probe_reads(tmp_path):
    reporter = ProgressReporter(
        worker="ai@n1",
        profile="ai",
        stall_after=180,
        directory=tmp_path,
        redis_url=None,
        sample=lambda: ([], 0, 0),
    )
    reporter.attach_consumer(fake_consumer(True, {"q.ai", "q.batch"}))
    written = reporter.report()
    assert written.connected and written.consuming == ("q.ai", "q.batch")
    env = {"GROWBIN_WORKER_PROGRESS_DIR": str(tmp_path)}
    assert main(["--profile", "ai", "--hostname", "ai@n1"], environ=env) == 0
    reporter.stop()  # a stopping worker removes its file
    assert main(["--profile", "ai", "--hostname", "ai@n1"], environ=env) == 1


def test_growbin_worker_probe_is_recognised_after_the_global_options():
    assert probe_args(["worker", "probe", "--profile", "ai"]) == ["--profile", "ai"]
    assert probe_args(["--topology", "slo", "worker", "probe", "-p", "x"]) == ["-p", "x"]
    assert probe_args(["worker", "--profile", "ai"]) is None
    assert probe_args(["topology", "lint"]) is None


def test_the_probe_command_answers_in_well_under_a_second(tmp_path):
    hostname = "ai@probe-test"
    write_progress_file(progress_file(tmp_path, hostname), ready(updated_at=time.time()))
    env = {**os.environ, "GROWBIN_WORKER_PROGRESS_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "growbin.cli", "worker", "probe", "-p", "ai", "--hostname"]
    started = time.perf_counter()
    proc = subprocess.run([*cmd, hostname], env=env, capture_output=True, text=True, timeout=30)
    took = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ready: ai@n1")
    print(f"\nprobe (a whole `python -m growbin.cli worker probe` process): {took * 1000:.0f} ms")
    assert took < 1.0  # a loaded machine included; a quiet one answers in ~0.15 s
    stopped = subprocess.run(
        [*cmd, "ai@elsewhere"], env=env, capture_output=True, text=True, timeout=30
    )
    assert stopped.returncode == 1 and "no progress record" in stopped.stderr
