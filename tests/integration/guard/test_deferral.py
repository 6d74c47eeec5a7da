"""A throttled task is deferred: it holds no worker slot and spends no retry budget."""

from __future__ import annotations

import itertools
import time
import uuid

import pytest
from tests.integration.guard.conftest import TOPOLOGY, runs
from tests.integration.guard.tasks import spec_for

pytestmark = pytest.mark.integration


def test_a_throttled_task_frees_its_slot_for_others_and_keeps_its_retry_budget(
    env, app, r, prefix, fake_openai, start_worker
):
    # One slot, and a limit of one call every 3 s: the second and third calls must wait ~3
    # and ~6 s. A worker that slept on the limit would hold its only slot that long.
    worker = start_worker("work", TOPOLOGY, "--concurrency=1", "--pool=threads", env=env)
    worker.wait_for_log("ready", timeout=60)
    spec = spec_for(fake_openai, prefix, rate_limits={"openai.gpt-4o-mini": {"rate": 1, "per": 3}})
    started = time.monotonic()
    throttled = [app.send_task("growbin.testing.guarded_text", args=(spec, n)) for n in range(3)]
    key = uuid.uuid4().hex
    behind = app.send_task("growbin.testing.record", args=(key, 1))
    assert behind.get(timeout=30) == 1
    unthrottled_done = time.monotonic() - started
    texts = [res.get(timeout=60) for res in throttled]
    all_done = time.monotonic() - started

    done = [run for run in runs(r, prefix) if run["outcome"] == "ok"]
    deferred = [run for run in runs(r, prefix) if run["outcome"] == "Throttled"]
    calls = sorted(c.time for c in fake_openai.calls)
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(calls)]
    print(
        f"\ndeferral: unthrottled task done after {unthrottled_done:.2f}s while the throttled "
        f"ones took {all_done:.2f}s; {len(deferred)} deferrals; gaps between calls {gaps} s; "
        f"retries used {[run['retries'] for run in done]}"
    )
    assert all(texts)
    assert len(calls) == 3 and min(gaps) >= 3.0 - 0.05
    assert unthrottled_done < all_done / 2
    assert deferred, "the limit never throttled anything"
    # max_retries is 0 on this route: a deferral that spent budget would have dead-lettered
    assert sorted(run["n"] for run in done) == [0, 1, 2]
    assert {run["retries"] for run in done} == {0}
    assert max(run["deferrals"] for run in done) >= 1
