"""The batching writer: few commits for many events, and a wait that means committed."""

import sqlite3
import threading
import time

from growbin.journal.rows import JournalRow
from growbin.journal.store import JournalStore
from growbin.journal.writer import JournalWriter


class CountingStore(JournalStore):
    batches: list[int]

    def write(self, rows):
        self.batches.append(len(rows))
        super().write(rows)


def make_writer(path, batches, **kw):
    def open_store():
        store = JournalStore.open(path)
        store.__class__ = CountingStore
        store.batches = batches
        return store

    return JournalWriter(open_store, **kw)


def row(i):
    return JournalRow(task_id=f"t{i}", task_name="x", status="pending", retry_count=0)


def count(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM task_wal").fetchone()[0]
    finally:
        conn.close()


def test_a_burst_of_events_is_committed_in_a_few_batches(tmp_path):
    batches: list[int] = []
    writer = make_writer(tmp_path / "j.db", batches, batch_size=200, flush_interval=0.05)
    for i in range(1000):
        writer.submit(row(i))
    assert writer.flush()
    writer.close()
    assert count(tmp_path / "j.db") == 1000
    assert sum(batches) == 1000
    assert len(batches) <= 20, batches


def test_an_event_that_waits_returns_only_once_it_is_committed(tmp_path):
    writer = make_writer(tmp_path / "j.db", [], flush_interval=5.0)
    started = time.monotonic()
    assert writer.submit(row(1), wait=True)
    # a waiter makes the thread commit at once instead of waiting out the 5 s interval
    assert time.monotonic() - started < 2.0
    assert count(tmp_path / "j.db") == 1
    writer.close()


def test_a_failed_commit_is_retried_with_the_same_rows(tmp_path, monkeypatch):
    monkeypatch.setattr("growbin.journal.writer.RETRY_SECONDS", 0.01)
    failures = iter([True, True, False])
    real_open = JournalStore.open

    def flaky_open():
        if next(failures):
            raise sqlite3.OperationalError("database is locked")
        return real_open(tmp_path / "j.db")

    writer = JournalWriter(flaky_open)
    assert writer.submit(row(1), wait=True)
    assert writer.failed_commits == 2
    assert count(tmp_path / "j.db") == 1
    writer.close()


def test_submitting_from_many_threads_loses_nothing(tmp_path):
    writer = make_writer(tmp_path / "j.db", [], batch_size=50, flush_interval=0.01)

    def produce(base):
        for i in range(200):
            writer.submit(row(base + i), wait=(i % 50 == 0))

    threads = [threading.Thread(target=produce, args=(n * 1000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.flush()
    writer.close()
    assert count(tmp_path / "j.db") == 800
