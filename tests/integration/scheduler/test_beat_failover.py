"""Two `growbin beat` processes: one sends, the other takes over after a kill -9, no tick twice.

The issue asks for 2 minutes with a 5-second schedule; the suite runs 30 s with 2-second ticks
and a 4-second lock. ``GROWBIN_TEST_BEAT_SECONDS=120 GROWBIN_TEST_BEAT_EVERY=5 pytest
tests/integration/scheduler -k takes_over -s`` runs the full one. Messages are read straight
from the queue (nothing consumes it), each with the beat's headers: entry, run time, sender.
"""

from __future__ import annotations

import os
import time
from itertools import pairwise

import pytest
import redis
from tests.integration.scheduler.beats import BeatProcess, drain, pid_of, wait_for

from growbin.scheduler.config import BeatConfig
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

SECONDS = float(os.environ.get("GROWBIN_TEST_BEAT_SECONDS", "30"))
EVERY = float(os.environ.get("GROWBIN_TEST_BEAT_EVERY", "2"))
LOCK_TIMEOUT = float(os.environ.get("GROWBIN_TEST_BEAT_LOCK_TIMEOUT", "4"))
STANDBY_POLL = 0.5

TOPOLOGY = """
version: 1
name: beat-test
exchanges:
  tasks: {{type: topic}}
queues:
  q.beat:
    type: classic
    bindings: [{{exchange: tasks, routing_key: "beat.#"}}]
    max_length: 10000
    overflow: reject-publish
routes:
  growbin.testing.*: {{exchange: tasks, routing_key: beat.tick}}
profiles:
  beat-test: {{queues: [q.beat], pool: threads, concurrency: 1}}
schedule:
  fast: {{task: growbin.testing.tick, every: {every}}}
  slow: {{task: growbin.testing.tick, every: {slow}}}
"""


@pytest.fixture
def beat_env(broker_api, temp_vhost, service_env, tmp_path):
    path = tmp_path / "beat-topology.yaml"
    path.write_text(TOPOLOGY.format(every=EVERY, slow=EVERY * 2.5))
    apply(loader.load(str(path)).topology.model_copy(update={"vhost": temp_vhost}), broker_api)
    return {
        **service_env,
        "GROWBIN_TOPOLOGY": str(path),
        "GROWBIN_TASK_MODULES": "tests.integration.tasks",
        "GROWBIN_BEAT_LOCK_TIMEOUT": str(LOCK_TIMEOUT),
        "GROWBIN_BEAT_STANDBY_POLL": str(STANDBY_POLL),
    }


@pytest.fixture
def lock_key(beat_env, redis_url):
    namespace = BeatConfig().namespace("beat-test", beat_env["GROWBIN_BROKER_URL"])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client, f"{namespace}:lock"
    client.delete(f"{namespace}:lock", f"{namespace}:last-run")
    client.close()


@pytest.fixture
def start_beat(beat_env, tmp_path):
    started: list[BeatProcess] = []

    def start(name: str) -> BeatProcess:
        beat = BeatProcess.start(beat_env, tmp_path / f"beat-{name}.log")
        started.append(beat)
        return beat

    yield start
    for beat in started:
        beat.stop()


def test_two_beats_send_each_tick_once_and_the_standby_takes_over_after_a_kill(
    beat_env, lock_key, start_beat
):
    client, key = lock_key
    beats = [start_beat("a"), start_beat("b")]
    assert wait_for(lambda: client.get(key) is not None, timeout=30) is not None
    started = time.monotonic()
    time.sleep(SECONDS / 2)
    first_token = client.get(key)
    active = next(b for b in beats if b.pid == pid_of(first_token))
    standby = next(b for b in beats if b is not active)
    active.kill()
    killed_at = time.time()
    takeover = wait_for(
        lambda: client.get(key) not in (None, first_token), timeout=LOCK_TIMEOUT * 3
    )
    second_token = client.get(key)
    time.sleep(max(0.0, SECONDS - (time.monotonic() - started)))
    standby.stop()
    sent = drain(beat_env["GROWBIN_BROKER_URL"], "q.beat")

    report = [
        f"\n{SECONDS:.0f} s, every {EVERY:g} s (and {EVERY * 2.5:g} s), lock {LOCK_TIMEOUT:g} s:"
    ]
    for entry, every in (("fast", EVERY), ("slow", EVERY * 2.5)):
        times = [s.run_at for s in sent if s.entry == entry]
        gaps = [b - a for a, b in pairwise(times)]
        across = max(b - a for a, b in pairwise(times) if a < killed_at < b) if gaps else 0.0
        report.append(
            f"  {entry}: {len(times)} sends, {len(set(times))} distinct; gaps min "
            f"{min(gaps):.2f} s, max {max(gaps):.2f} s, across the takeover {across:.2f} s"
        )
        assert len(times) == len(set(times)), "a tick was sent twice"
        assert min(gaps) >= every * 0.9, f"{entry}: two sends {min(gaps):.2f} s apart"
        assert across <= every + LOCK_TIMEOUT + STANDBY_POLL + 3.0
        assert len(times) >= (SECONDS - LOCK_TIMEOUT - STANDBY_POLL) / every - 3
    senders = [s.node for s in sent]
    before = [s.node for s in sent if s.run_at < killed_at]
    after = [s.node for s in sent if s.run_at > killed_at]
    report.append(
        f"  takeover {takeover:.2f} s after the kill (bound: lock {LOCK_TIMEOUT:g} s + poll "
        f"{STANDBY_POLL:g} s); senders {len(set(senders))}"
    )
    print("\n".join(report))
    assert takeover is not None and takeover <= LOCK_TIMEOUT + STANDBY_POLL + 1.5
    assert set(before) == {first_token} and set(after) == {second_token}
    assert pid_of(second_token) == standby.pid
    assert "now the active one" in standby.output()


def test_a_beat_stopped_cleanly_hands_over_at_once(beat_env, lock_key, start_beat):
    client, key = lock_key
    beats = [start_beat("a"), start_beat("b")]
    assert wait_for(lambda: client.get(key) is not None, timeout=30) is not None
    time.sleep(1.0)  # both are up: one leads, one stands by
    token = client.get(key)
    active = next(b for b in beats if b.pid == pid_of(token))
    stopping = time.monotonic()
    active.stop()  # SIGTERM: the lock is released, not left to expire
    assert wait_for(lambda: client.get(key) not in (None, token), timeout=LOCK_TIMEOUT * 3)
    takeover = time.monotonic() - stopping
    print(
        f"\nclean stop: the standby leads {takeover:.2f} s after SIGTERM (lock {LOCK_TIMEOUT:g} s)"
    )
    assert takeover < LOCK_TIMEOUT
