"""The journal in real `growbin worker` processes: a PostgreSQL outage, a kill -9.

The issue asks for a 60-second outage; the suite stops PostgreSQL for 15 s to stay short.
``GROWBIN_TEST_PG_OUTAGE=60 pytest tests/integration/journal -k outage -s`` runs the full one.
Each test prints what it measured (`pytest -s`).
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid

import pytest
import redis
from sqlalchemy import text
from tests.integration.journal.conftest import wait_until

from growbin.db.engine import make_engine
from growbin.journal.rows import rank
from growbin.journal.store import JournalStore
from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

TOPOLOGY = "tests/integration/journal/topology.yaml"
OUTAGE_SECONDS = float(os.environ.get("GROWBIN_TEST_PG_OUTAGE", "15"))
SYNC_INTERVAL = 2.0
WORKER = "work@journal-test"


@pytest.fixture
def env(broker_api, temp_vhost, service_env, tmp_path):
    apply(loader.load(TOPOLOGY).topology.model_copy(update={"vhost": temp_vhost}), broker_api)
    return {
        **service_env,
        "GROWBIN_TOPOLOGY": TOPOLOGY,
        "GROWBIN_TASK_MODULES": "tests.integration.tasks",
        "GROWBIN_JOURNAL_PATH": str(tmp_path / "journal" / "{hostname}.db"),
        "GROWBIN_JOURNAL_SYNC_INTERVAL": str(SYNC_INTERVAL),
    }


@pytest.fixture
def app(env):
    settings = load_settings(
        broker_url=env["GROWBIN_BROKER_URL"],
        redis_url=env["GROWBIN_REDIS_URL"],
        topology=TOPOLOGY,
        task_modules="tests.integration.tasks",
    )
    celery_app = create_app(settings, loader.load(TOPOLOGY), registrars=registrars(settings))
    yield celery_app
    celery_app.close()


@pytest.fixture
def r(env):
    client = redis.Redis.from_url(env["GROWBIN_REDIS_URL"])
    yield client
    client.close()


def journal_rows(path) -> dict[str, tuple[str, int]]:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return {
            task_id: (status, retry_count)
            for task_id, status, retry_count in conn.execute(
                "SELECT task_id, status, retry_count FROM task_wal"
            )
        }
    finally:
        conn.close()


def test_tasks_run_through_a_postgresql_outage_and_the_next_sync_brings_every_row(
    env, app, r, start_worker, temp_postgres, tmp_path
):
    worker = start_worker(
        "work",
        TOPOLOGY,
        "--hostname",
        WORKER,
        env={**env, "GROWBIN_DATABASE_URL": temp_postgres.url},
    )
    worker.wait_for_log("ready", timeout=60)
    key, total = uuid.uuid4().hex, 500
    temp_postgres.stop()
    down_at = time.monotonic()
    ids: list[str] = []
    waves = 10
    for wave in range(waves):  # spread over the first half of the outage
        for n in range(wave * total // waves, (wave + 1) * total // waves):
            ids.append(app.send_task("growbin.testing.nap", args=(key, n, 0.01)).id)
        time.sleep(OUTAGE_SECONDS / 2 / waves)
    assert wait_until(lambda: r.hlen(f"execs:{key}") == total, timeout=OUTAGE_SECONDS)
    done_at = time.monotonic() - down_at
    assert temp_postgres.running() is False, "the tasks must finish while PostgreSQL is down"
    journal = tmp_path / "journal" / f"{WORKER}.db"
    assert wait_until(lambda: len(journal_rows(journal)) == total, timeout=10)
    with JournalStore.open(journal) as store:
        failed_syncs = store.conn.execute(
            "SELECT COUNT(*) FROM sync_log WHERE status = 'failed'"
        ).fetchone()[0]
        unsynced_during = store.stats()["unsynced"]
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    temp_postgres.start()
    up_at = time.monotonic()

    engine = make_engine(load_settings(env="test"), url=temp_postgres.url)

    def counts() -> tuple[int, int, int]:
        with engine.connect() as conn:
            return tuple(
                conn.execute(
                    text(
                        "SELECT COUNT(*), COUNT(DISTINCT task_id),"
                        " COUNT(*) FILTER (WHERE status = 'completed') FROM task_history"
                    )
                ).one()
            )

    assert wait_until(lambda: counts()[0] >= total, timeout=SYNC_INTERVAL * 5 + 20)
    caught_up = time.monotonic() - up_at
    with engine.connect() as conn:
        synced_ids = {row[0] for row in conn.execute(text("SELECT task_id FROM task_history"))}
    rows, distinct, completed = counts()
    engine.dispose()
    with JournalStore.open(journal) as store:
        last = store.stats()["last_sync"]
    print(
        f"\noutage {OUTAGE_SECONDS:.0f} s: {total} tasks done {done_at:.1f} s into it, "
        f"{failed_syncs} failed syncs, {unsynced_during} rows pending; back up: all rows in "
        f"task_history {caught_up:.1f} s later: {rows} rows, {distinct} distinct, "
        f"{completed} completed, {len(set(ids) - synced_ids)} lost"
    )
    assert failed_syncs >= 1 and unsynced_during == total
    assert rows == distinct == completed == total
    assert synced_ids == set(ids)
    assert last["status"] == "success"
    assert all(int(v) == 1 for v in r.hvals(f"execs:{key}"))


def test_a_worker_killed_with_sigkill_leaves_a_journal_that_reopens_with_every_commit(
    env, app, r, start_worker, tmp_path
):
    key, total = uuid.uuid4().hex, 400
    worker = start_worker("work", TOPOLOGY, "--hostname", WORKER, env=env)
    worker.wait_for_log("ready", timeout=60)
    ids = [app.send_task("growbin.testing.nap", args=(key, n, 0.03)).id for n in range(total)]
    journal = tmp_path / "journal" / f"{WORKER}.db"
    assert wait_until(lambda: r.hlen(f"execs:{key}") >= total // 3, timeout=60)
    seen = journal_rows(journal)  # committed before the kill, by definition
    worker.kill()
    worker.wait_exit(timeout=10)
    executed_before = r.hlen(f"execs:{key}")

    conn = sqlite3.connect(journal)
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    after = journal_rows(journal)
    lost = [t for t in seen if t not in after]
    regressed = [t for t, (s, c) in seen.items() if rank(*after[t]) < rank(s, c)]
    assert integrity == "ok"
    assert lost == [] and regressed == []

    # a new life of the same worker reopens the file and finishes the redelivered tasks
    start_worker("work", TOPOLOGY, "--hostname", WORKER, env=env).wait_for_log("ready", timeout=60)
    assert wait_until(lambda: r.hlen(f"execs:{key}") == total, timeout=90)

    def all_completed() -> bool:
        rows = journal_rows(journal)
        return all(rows.get(i, ("", 0))[0] == "completed" for i in ids)

    assert wait_until(all_completed, timeout=20)
    reruns = sum(int(v) - 1 for v in r.hvals(f"execs:{key}"))
    print(
        f"\nkill -9 after {executed_before}/{total} tasks: {len(seen)} rows seen committed, "
        f"{len(lost)} lost, integrity {integrity}; after restart all {total} completed in the "
        f"journal ({reruns} executions counted twice: acked late, redelivered)"
    )


def test_the_scheduled_sync_task_syncs_the_journal_of_the_worker_that_runs_it(
    env, app, r, start_worker, temp_postgres
):
    worker = start_worker(
        "work",
        TOPOLOGY,
        "--hostname",
        WORKER,
        env={
            **env,
            "GROWBIN_DATABASE_URL": temp_postgres.url,
            "GROWBIN_JOURNAL_SYNC_INTERVAL": "0",
        },
    )
    worker.wait_for_log("ready", timeout=60)
    key = uuid.uuid4().hex
    app.send_task("growbin.testing.nap", args=(key, 1, 0)).get(timeout=30)
    synced = app.send_task("growbin.journal.sync").get(timeout=30)
    checkpoint = app.send_task("growbin.journal.checkpoint").get(timeout=30)
    assert synced["status"] == "success" and synced["rows"] >= 1
    assert checkpoint["busy"] or checkpoint["wal_bytes_after"] == 0
    assert checkpoint["pruned"] == 0  # finished rows are kept for GROWBIN_JOURNAL_RETENTION
