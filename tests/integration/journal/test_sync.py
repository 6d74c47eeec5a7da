"""Journal -> PostgreSQL task_history on a real (temporary) cluster."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from growbin.db.engine import make_engine
from growbin.journal.rows import JournalRow
from growbin.journal.store import JournalStore
from growbin.journal.sync import sync_journal
from growbin.settings import load_settings

pytestmark = pytest.mark.integration


def history(engine):
    with engine.connect() as conn:
        return {
            r.task_id: r
            for r in conn.execute(text("SELECT task_id, status, retry_count FROM task_history"))
        }


def row(task_id, status, retry_count=0, **kw):
    return JournalRow(
        task_id=task_id, task_name="growbin.demo.add", status=status, retry_count=retry_count, **kw
    )


def test_a_sync_upserts_every_pending_row_once_and_is_logged(temp_postgres, tmp_path):
    engine = make_engine(load_settings(env="test"), url=temp_postgres.url)
    with JournalStore.open(tmp_path / "j.db") as store:
        store.write(
            [row(f"t{i}", "completed", created_at=1.0, completed_at=2.0) for i in range(1200)]
        )
        result = sync_journal(store, engine, batch_size=500)
        assert (result.status, result.rows) == ("success", 1200)
        assert store.pending(10) == []
        again = sync_journal(store, engine)
        assert (again.status, again.rows) == ("success", 0)
        log = store.conn.execute("SELECT status, rows FROM sync_log ORDER BY id").fetchall()
    assert log == [("success", 1200), ("success", 0)]
    assert len(history(engine)) == 1200
    engine.dispose()


def test_rows_stay_pending_while_postgresql_is_down_and_go_across_after(temp_postgres, tmp_path):
    engine = make_engine(load_settings(env="test"), url=temp_postgres.url)
    with JournalStore.open(tmp_path / "j.db") as store:
        store.write([row("a", "running"), row("b", "completed")])
        temp_postgres.stop()
        down = sync_journal(store, engine)
        assert down.status == "failed" and "PostgreSQL" in (down.error or "")
        assert len(store.pending(10)) == 2
        temp_postgres.start()
        up = sync_journal(store, engine)
        assert (up.status, up.rows) == ("success", 2)
        log = [r[0] for r in store.conn.execute("SELECT status FROM sync_log ORDER BY id")]
    assert log == ["failed", "success"]
    assert {k: v.status for k, v in history(engine).items()} == {"a": "running", "b": "completed"}
    engine.dispose()


def test_a_stale_copy_from_another_journal_does_not_undo_a_newer_state(temp_postgres, tmp_path):
    # the task ran on worker A, A was killed, the redelivery finished on worker B
    engine = make_engine(load_settings(env="test"), url=temp_postgres.url)
    with JournalStore.open(tmp_path / "a.db") as a, JournalStore.open(tmp_path / "b.db") as b:
        b.write([row("t", "completed")])
        a.write([row("t", "running")])
        sync_journal(b, engine)
        sync_journal(a, engine)
        a.write([row("u", "retrying", retry_count=1)])
        b.write([row("u", "running", retry_count=0)])
        sync_journal(a, engine)
        sync_journal(b, engine)
    rows = history(engine)
    assert rows["t"].status == "completed"
    assert (rows["u"].status, rows["u"].retry_count) == ("retrying", 1)
    engine.dispose()
