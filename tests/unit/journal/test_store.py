"""The journal file: its shape, its upsert order, what counts as pending, checkpoints."""

import sqlite3
import time

import pytest

from growbin.journal.rows import JournalRow
from growbin.journal.schema import TABLES
from growbin.journal.store import JournalError, JournalStore


@pytest.fixture
def store(tmp_path):
    with JournalStore.open(tmp_path / "w.db") as s:
        yield s


def row(status, retry_count=0, task_id="t1", **kw):
    return JournalRow(
        task_id=task_id, task_name="growbin.demo.add", status=status, retry_count=retry_count, **kw
    )


def stored(store, task_id="t1"):
    cursor = store.conn.execute("SELECT * FROM task_wal WHERE task_id = ?", (task_id,))
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def test_the_journal_has_every_seed_table_and_runs_in_wal_mode(store):
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(TABLES) <= names
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_synchronous_full_is_honoured_and_anything_else_refused(tmp_path):
    with JournalStore.open(tmp_path / "f.db", synchronous="FULL") as s:
        assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(JournalError, match="NORMAL or FULL"):
        JournalStore.open(tmp_path / "x.db", synchronous="OFF")


def test_a_late_received_event_does_not_move_a_finished_task_back(store):
    store.write([row("running", started_at=2.0, created_at=2.0)])
    store.write([row("completed", completed_at=3.0)])
    store.write([row("pending", created_at=1.0, payload='{"args": [1]}')])
    r = stored(store)
    assert r["status"] == "completed"
    assert r["created_at"] == 1.0 and r["started_at"] == 2.0 and r["completed_at"] == 3.0
    assert r["payload"] == '{"args": [1]}'


def test_a_retried_task_counts_its_attempts_and_keeps_the_last_error(store):
    store.write([row("running")])
    store.write([row("retrying", retry_count=1, error="TimeoutError: slow")])
    store.write([row("pending", retry_count=1), row("running", retry_count=1)])
    assert stored(store)["status"] == "running"
    store.write([row("completed", retry_count=1, completed_at=9.0)])
    r = stored(store)
    assert (r["status"], r["retry_count"], r["error"]) == ("completed", 1, "TimeoutError: slow")


def test_pending_rows_are_those_changed_since_their_last_sync(store):
    store.write([row("pending", task_id="a"), row("pending", task_id="b")])
    first = store.pending(10)
    assert {r["task_id"] for r in first} == {"a", "b"}
    store.write([row("completed", task_id="a")])  # changes while the sync is on its way
    store.mark_synced((r["task_id"], r["version"]) for r in first)
    assert [r["task_id"] for r in store.pending(10)] == ["a"]


def test_prune_removes_only_synced_finished_rows_past_retention(store):
    old = time.time() - 1000
    store.write(
        [
            row("completed", task_id="done", completed_at=old),
            row("completed", task_id="unsynced", completed_at=old),
            row("running", task_id="running"),
        ]
    )
    store.mark_synced([("done", 1), ("running", 1)])
    assert store.prune(time.time() - 10) == 1
    left = {r[0] for r in store.conn.execute("SELECT task_id FROM task_wal")}
    assert left == {"unsynced", "running"}


def test_a_truncating_checkpoint_empties_the_wal(store, tmp_path):
    store.write([row("pending", task_id=str(i)) for i in range(500)])
    assert (tmp_path / "w.db-wal").stat().st_size > 0
    result = store.checkpoint("TRUNCATE")
    assert not result.busy
    assert (tmp_path / "w.db-wal").stat().st_size == 0
    assert store.integrity_check() == "ok"


def test_a_second_process_style_connection_reads_committed_rows(store, tmp_path):
    store.write([row("completed")])
    other = sqlite3.connect(tmp_path / "w.db")
    assert other.execute("SELECT status FROM task_wal").fetchone() == ("completed",)
    other.close()


def test_stats_report_rows_by_status_and_unsynced(store):
    store.write([row("completed", task_id="a"), row("failed", task_id="b")])
    store.log_sync("failed", 0, "PostgreSQL is not reachable", 0.1)
    stats = store.stats()
    assert stats["by_status"] == {"completed": 1, "failed": 1}
    assert stats["unsynced"] == 2
    assert stats["last_sync"]["status"] == "failed"
    assert stats["synchronous"] == "NORMAL"
