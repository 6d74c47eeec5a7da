"""LeaderScheduler against the real Redis, driven tick by tick; sends are recorded, not published.

These are the cases a two-process test cannot stage on demand: a leader that wakes up after
its lock was taken, a new leader carrying on from the old one's last send, a refused send.
"""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import timedelta

import pytest
import redis
from pydantic import SecretStr

from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import ALL_TASKS
from growbin.scheduler.config import BeatConfig
from growbin.scheduler.lock import LeaderLock
from growbin.scheduler.scheduler import BeatRuntime, LeaderScheduler
from growbin.settings import Settings
from growbin.topology import loader

pytestmark = pytest.mark.integration

EVERY = 0.3


class Recording(LeaderScheduler):
    refuse = 0  # how many sends to refuse, as a broker that is down would

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        if self.refuse:
            self.refuse -= 1
            raise ConnectionError("broker refused the publish")
        self.app.sent.append((entry.name, entry.options["headers"], self.lock.token))


@pytest.fixture
def client(redis_url):
    c = redis.Redis.from_url(redis_url, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def make_scheduler(client):
    namespace = f"growbin:beat:test-{uuid.uuid4().hex[:8]}"
    apps = []
    sent: list = []

    def make(**config):
        settings = Settings(broker_url=SecretStr("memory://"))
        app = create_app(settings, loader.load("production"), registrars=ALL_TASKS)
        app.conf.beat_schedule = {
            "fast": {"task": "growbin.demo.add", "schedule": timedelta(seconds=EVERY)}
        }
        cfg = BeatConfig(lock_timeout=config.pop("lock_timeout", 3.0), **config)
        app.growbin_beat = BeatRuntime(cfg, LeaderLock(client, namespace, cfg.lock_timeout))
        app.sent = sent
        apps.append(app)
        return Recording(app=app)

    yield make, sent, namespace
    client.delete(f"{namespace}:lock", f"{namespace}:last-run")
    for app in apps:
        app.close()


def run_ticks(schedulers, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for s in schedulers:
            s.tick()
        time.sleep(0.02)


def test_only_the_lock_holder_sends(make_scheduler):
    make, sent, _ = make_scheduler
    a, b = make(), make()
    run_ticks([a, b], EVERY * 5)
    assert a.leading != b.leading
    tokens = {token for _, _, token in sent}
    assert len(tokens) == 1 and 3 <= len(sent) <= 6


def test_a_leader_that_wakes_after_its_lock_was_taken_sends_nothing(make_scheduler, client):
    make, sent, namespace = make_scheduler
    a = make()
    run_ticks([a], EVERY * 2)
    before = len(sent)
    # a pause past the lock's expiry, and another scheduler took the lock meanwhile
    client.set(f"{namespace}:lock", "someone-else", px=10_000)
    a._next_renew = float("inf")  # the stale leader still believes it leads until it claims
    run_ticks([a], EVERY * 3)
    assert len(sent) == before
    assert not a.leading


def test_a_new_leader_carries_on_from_the_last_send_instead_of_sending_again(
    make_scheduler, client
):
    make, sent, namespace = make_scheduler
    a = make()
    run_ticks([a], EVERY * 3)
    last_by_a = float(sent[-1][1]["x-growbin-beat-run-at"])
    client.delete(f"{namespace}:lock")  # a died; its lock expired
    a.leading = False
    a.lock.acquire = lambda: False  # and it never comes back
    b = make()
    b.tick()
    first_b = [h for _, h, token in sent if token == b.lock.token]
    assert first_b == [] or float(first_b[0]["x-growbin-beat-run-at"]) - last_by_a >= EVERY * 0.9
    run_ticks([b], EVERY * 3)
    times = [float(h["x-growbin-beat-run-at"]) for _, h, _ in sent]
    assert len(times) == len(set(times))
    assert min(y - x for x, y in itertools.pairwise(times)) >= EVERY * 0.9


def test_a_refused_send_is_tried_again_and_sent_once(make_scheduler):
    make, sent, _ = make_scheduler
    a = make(publish_retry=0.2)
    a.refuse = 2
    run_ticks([a], EVERY + 1.0)
    assert a.refuse == 0
    assert len(sent) >= 1
    times = [float(h["x-growbin-beat-run-at"]) for _, h, _ in sent]
    assert len(times) == len(set(times))


def test_a_redis_failure_during_a_send_makes_the_leader_stand_by_not_crash(make_scheduler):
    make, sent, _ = make_scheduler
    a = make()
    run_ticks([a], EVERY * 2)
    assert a.leading

    def broken(*args, **kwargs):
        raise redis.ConnectionError("Redis went away")

    a.lock.claim = broken
    before = len(sent)
    deadline = time.monotonic() + EVERY * 4
    while a.leading and time.monotonic() < deadline:  # until the next send tries to claim
        a.tick()
        time.sleep(0.02)
    assert not a.leading and len(sent) == before
    del a.lock.claim  # Redis is back: it takes its own lock back and goes on
    run_ticks([a], EVERY * 3)
    assert a.leading and len(sent) > before
