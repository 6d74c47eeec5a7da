"""Dead letters follow their task: a task id that later succeeded closes its record as superseded.

The proof of a later success is task_history (the workers' journals, synced to PostgreSQL):
the rows here are written with the journal's own sync function, and the last test runs the
whole path in a real worker (dead-lettered, then the same task id succeeds).
"""

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy import text
from tests.integration.ops import test_deadletters as base
from tests.integration.ops.test_deadletters import (
    DLQ,
    _cli,
    publish_worker_dead_letter,
    take,
    wait_depth,
)

from growbin.db.engine import make_engine
from growbin.db.models import DeadLetterState
from growbin.journal.sync import upsert_history
from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.service import DeadLetterService

pytestmark = pytest.mark.integration

# the dead-letter tests' fixtures: production topology on a fresh vhost, the service, a channel
topology = base.topology
broker_url = base.broker_url
settings = base.settings
service = base.service
channel = base.channel


@pytest.fixture
def engine(settings):
    engine = make_engine(settings)
    yield engine
    engine.dispose()


def journal_says(engine, task_id, task_name, status, *, worker="batch@host-2", retries=0):
    """What a worker's journal sync writes to task_history for one task id."""
    now = time.time()
    row = {
        "task_id": task_id,
        "task_name": task_name,
        "payload": None,
        "status": status,
        "worker": worker,
        "queue": "q.batch",
        "created_at": now - 1,
        "started_at": now - 1,
        "completed_at": now,
        "error": None if status == "completed" else "ValueError: template",
        "retry_count": retries,
    }
    with engine.begin() as conn:
        upsert_history(conn, [row])


def test_a_dead_letter_whose_task_later_succeeded_is_superseded_at_sync_and_leaves_the_queue(
    service, channel, engine
):
    succeeded = publish_worker_dead_letter(channel)
    still_failed = publish_worker_dead_letter(channel)
    other_task = publish_worker_dead_letter(channel)
    assert wait_depth(channel, 3) == 3
    journal_says(engine, succeeded.task_id, succeeded.task, "completed", worker="batch@host-2")
    journal_says(engine, still_failed.task_id, still_failed.task, "failed")
    # the same id under another task name proves nothing about this task
    journal_says(engine, other_task.task_id, "growbin.jobs.analytics_daily", "completed")

    counts = service.sync()

    assert counts.superseded == 1
    record = service.show(succeeded.dead_letter_id)
    assert record.state == DeadLetterState.SUPERSEDED
    assert record.superseded_at is not None
    assert "batch@host-2" in (record.superseded_by or "")
    assert service.show(still_failed.dead_letter_id).state == DeadLetterState.QUEUED
    assert service.show(other_task.dead_letter_id).state == DeadLetterState.QUEUED
    # archived first, then removed from the queue: the queue holds what still needs a person
    assert wait_depth(channel, 2) == 2
    assert {m.headers["id"] for m in take(channel, DLQ)} == {
        still_failed.task_id,
        other_task.task_id,
    }
    assert service.sync().superseded == 0
    assert service.show(succeeded.dead_letter_id).state == DeadLetterState.SUPERSEDED


def test_a_success_is_not_hidden_by_a_failure_of_the_same_attempt_that_syncs_later(
    service, channel, engine
):
    # the redelivered copy succeeded on host-2; host-1's journal, which saw the failure that
    # dead-lettered it, reaches PostgreSQL afterwards
    info = publish_worker_dead_letter(channel)
    assert wait_depth(channel, 1) == 1
    journal_says(engine, info.task_id, info.task, "completed", worker="batch@host-2", retries=2)
    journal_says(engine, info.task_id, info.task, "failed", worker="batch@host-1", retries=2)

    assert service.sync().superseded == 1
    assert service.show(info.dead_letter_id).state == DeadLetterState.SUPERSEDED


def test_replay_refuses_a_superseded_dead_letter_and_says_why(service, channel, engine):
    info = publish_worker_dead_letter(channel)
    assert wait_depth(channel, 1) == 1
    journal_says(engine, info.task_id, info.task, "completed")

    report = service.replay([info.dead_letter_id])

    assert report.replayed == []
    assert [dead_letter_id for dead_letter_id, _ in report.skipped] == [info.dead_letter_id]
    why = report.skipped[0][1]
    assert why.startswith("superseded:")
    assert info.task_id in why
    assert "succeeded" in why
    assert "batch@host-2" in why
    assert take(channel, "q.batch") == []


def test_replay_all_skips_superseded_dead_letters_and_replays_the_rest(service, channel, engine):
    succeeded = publish_worker_dead_letter(channel)
    failed = publish_worker_dead_letter(channel)
    assert wait_depth(channel, 2) == 2
    journal_says(engine, succeeded.task_id, succeeded.task, "completed")

    report = service.replay(replay_all=True)

    assert [item.task_id for item in report.replayed] == [failed.task_id]
    assert report.skipped == []
    assert [m.headers["id"] for m in take(channel, "q.batch")] == [failed.task_id]
    assert service.show(succeeded.dead_letter_id).state == DeadLetterState.SUPERSEDED


def test_superseded_dead_letters_are_listed_only_when_asked_for(service, channel, engine):
    succeeded = publish_worker_dead_letter(channel)
    failed = publish_worker_dead_letter(channel)
    assert wait_depth(channel, 2) == 2
    journal_says(engine, succeeded.task_id, succeeded.task, "completed")

    default = {r.task_id for r in service.list()}
    superseded = service.list(DeadLetterFilter.from_options(states=["superseded"]))
    everything = {r.task_id for r in service.list(DeadLetterFilter.from_options(states=["all"]))}

    assert default == {failed.task_id}
    assert [r.task_id for r in superseded] == [succeeded.task_id]
    assert everything == {succeeded.task_id, failed.task_id}
    assert service.sync().by_state["superseded"] == 1


def test_the_cli_refuses_to_replay_a_superseded_dead_letter_naming_the_reason(
    settings, service, channel, engine
):
    info = publish_worker_dead_letter(channel)
    assert wait_depth(channel, 1) == 1
    journal_says(engine, info.task_id, info.task, "completed")

    synced = _cli(settings, "dlq", "sync")
    replayed = _cli(settings, "dlq", "replay", info.dead_letter_id)
    listed = _cli(settings, "dlq", "list", "--state", "superseded", "--format", "json")

    print(f"\n{synced.stdout}{replayed.stdout}{replayed.stderr}")
    assert synced.returncode == 0, synced.stderr
    assert "1 superseded" in " ".join(synced.stdout.split())
    assert replayed.returncode == 1
    assert "superseded" in replayed.stderr
    assert "succeeded" in replayed.stderr
    assert "0 replayed, 1 skipped" in replayed.stdout
    assert take(channel, "q.batch") == []
    assert listed.returncode == 0, listed.stderr
    assert '"state": "superseded"' in listed.stdout


# The whole path in a real worker: a task id is dead-lettered, then the same id succeeds (as a
# held copy redelivered after an outage does); the worker's journal sync tells PostgreSQL.
JOURNAL_TOPOLOGY = "tests/integration/journal/topology.yaml"


def test_a_task_id_that_succeeds_after_its_dead_letter_is_superseded_through_the_journal(
    broker_api, temp_vhost, service_env, database_url, tmp_path, start_worker, engine
):
    from growbin.runtime.celery_app import create_app
    from growbin.runtime.registry import registrars
    from growbin.settings import load_settings
    from growbin.topology import loader
    from growbin.topology.plan import apply

    source = Path(JOURNAL_TOPOLOGY).read_text()
    route = "growbin.testing.*: {exchange: tasks, routing_key: work.misc}"
    assert route in source
    path = tmp_path / "no-retries.yaml"
    path.write_text(source.replace(route, route[:-1] + ", retry: {max_retries: 0}}"))
    loaded = loader.load(str(path))
    apply(loaded.topology.model_copy(update={"vhost": temp_vhost}), broker_api)
    env = {
        **service_env,
        "GROWBIN_TOPOLOGY": str(path),
        "GROWBIN_TASK_MODULES": "tests.integration.tasks",
        "GROWBIN_DATABASE_URL": database_url,
        "GROWBIN_JOURNAL_SYNC_INTERVAL": "1",
    }
    worker_settings = load_settings(
        env="test",
        broker_url=env["GROWBIN_BROKER_URL"],
        redis_url=env["GROWBIN_REDIS_URL"],
        database_url=database_url,
        topology=str(path),
        task_modules="tests.integration.tasks",
    )
    worker = start_worker("work", str(path), env=env)
    worker.wait_for_log("ready", timeout=60)
    app = create_app(worker_settings, loaded, registrars=registrars(worker_settings))
    r = redis.Redis.from_url(env["GROWBIN_REDIS_URL"])
    key, task_id = f"superseded-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    on_vhost = loaded.topology.model_copy(update={"vhost": temp_vhost})
    try:
        app.send_task("growbin.testing.flaky", args=(key,), task_id=task_id)
        with DeadLetterService(worker_settings, on_vhost) as dlq:
            deadline = time.monotonic() + 60
            while not (records := dlq.list()) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert [r_.task_id for r_ in records] == [task_id], worker.output()[-3000:]
            r.set(f"fixed:{key}", 1)
            # the same id again (the result backend still holds its failure: ask the journal)
            app.send_task("growbin.testing.flaky", args=(key,), task_id=task_id)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    status = conn.execute(
                        text("SELECT status FROM task_history WHERE task_id = :id"),
                        {"id": task_id},
                    ).scalar()
                if status == "completed":
                    break
                time.sleep(0.5)
            assert status == "completed", worker.output()[-3000:]

            counts = dlq.sync()
            record = dlq.show(records[0].dead_letter_id)
            report = dlq.replay([record.dead_letter_id])

        assert counts.superseded == 1
        assert record.state == DeadLetterState.SUPERSEDED
        assert record.superseded_at is not None
        assert record.superseded_at <= datetime.now(UTC)
        assert report.replayed == []
        assert report.skipped[0][1].startswith("superseded:")
        assert int(r.llen(f"times:{key}")) == 2  # ran twice; the refused replay ran nothing
    finally:
        r.delete(f"times:{key}", f"fixed:{key}")
        r.close()
        app.close()
