"""A task redelivered after its worker died mid-task does not pay for its call twice."""

from __future__ import annotations

import pytest
from tests.integration.guard.conftest import TOPOLOGY, runs
from tests.integration.guard.tasks import spec_for

pytestmark = pytest.mark.integration


def test_a_task_redelivered_after_kill_9_reuses_the_stored_result_instead_of_calling_again(
    env, app, r, prefix, fake_openai, start_worker
):
    # The task makes its paid call, then lingers (first run only) so the worker can be killed
    # after the effect and before the ack: RabbitMQ then redelivers the message.
    spec = spec_for(fake_openai, prefix, linger_after_call=60)
    first = start_worker("work", TOPOLOGY, "--concurrency=2", "--pool=threads", env=env)
    first.wait_for_log("ready", timeout=60)
    results = [app.send_task("growbin.testing.guarded_text", args=(spec, n)) for n in range(2)]
    r.blpop(f"lingering:{prefix}", timeout=30)
    r.blpop(f"lingering:{prefix}", timeout=30)
    calls_before_kill = fake_openai.call_count
    first.kill()  # SIGKILL: the two messages are unacked, RabbitMQ redelivers them
    first.proc.wait(timeout=10)
    start_worker("work", TOPOLOGY, "--concurrency=2", "--pool=threads", env=env)
    texts = [res.get(timeout=60) for res in results]

    done = [run for run in runs(r, prefix) if run["outcome"] == "ok"]
    print(
        f"\nidempotency: {len(results)} tasks, {len(done)} runs (each ran twice: killed after "
        f"its call, then redelivered), provider calls {calls_before_kill} before the kill and "
        f"{fake_openai.call_count} in all"
    )
    assert calls_before_kill == 2
    assert sorted(run["n"] for run in done) == [0, 0, 1, 1]
    assert len({run["pid"] for run in done}) == 2  # a second process ran the redeliveries
    assert fake_openai.call_count == 2  # the redelivered runs paid for nothing
    assert all(texts)
