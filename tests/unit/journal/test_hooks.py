"""The journal hooks on a real worker thread (Celery's in-memory transport)."""

import sqlite3
import time

import pytest
from celery.contrib.testing.worker import start_worker
from pydantic import SecretStr

from growbin.journal.config import JournalConfig
from growbin.journal.hooks import JournalHooks
from growbin.runtime.celery_app import create_app
from growbin.runtime.hooks import install_hooks
from growbin.runtime.registry import ALL_TASKS
from growbin.settings import Settings
from growbin.topology import loader


def _boom(app):
    @app.task(name="growbin.demo.boom", shared=False)
    def boom():
        raise ValueError("bad input")


@pytest.fixture
def app():
    settings = Settings(
        broker_url=SecretStr("memory://"), result_backend_url=SecretStr("cache+memory://")
    )
    celery_app = create_app(settings, loader.load("production"), registrars=(*ALL_TASKS, _boom))
    celery_app.conf.broker_transport_options = {"polling_interval": 0.01}
    yield celery_app
    celery_app.close()


def rows(path):
    conn = sqlite3.connect(path)
    try:
        cursor = conn.execute("SELECT * FROM task_wal")
        names = [d[0] for d in cursor.description]
        return {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
    finally:
        conn.close()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def run_with_journal(app, tmp_path, send):
    config = JournalConfig(path=str(tmp_path / "{hostname}.db"))
    hooks = JournalHooks(config, hostname="api@test")
    adapter = install_hooks(app, [hooks])
    try:
        with start_worker(app, pool="threads", perform_ping_check=False, queues=["q.api"]):
            ids = send()
            path = tmp_path / "api@test.db"
            assert wait_for(
                lambda: (
                    path.exists()
                    and all(
                        rows(path).get(i, {}).get("status") in ("completed", "failed") for i in ids
                    )
                )
            )
    finally:
        adapter.disconnect()
        hooks.close()
    return rows(path)


def test_a_task_is_journalled_from_received_to_completed_with_its_times(app, tmp_path):
    journal = run_with_journal(
        app, tmp_path, lambda: [app.send_task("growbin.demo.add", args=(1, 2)).id]
    )
    [r] = journal.values()
    assert r["status"] == "completed" and r["task_name"] == "growbin.demo.add"
    assert r["queue"] == "q.api"
    assert r["created_at"] <= r["started_at"] <= r["completed_at"]
    assert r["payload"] == '{"args": [1, 2], "kwargs": {}}'
    assert r["version"] > r["synced_version"] == 0


def test_a_failed_task_is_journalled_with_its_error(app, tmp_path):
    journal = run_with_journal(app, tmp_path, lambda: [app.send_task("growbin.demo.boom").id])
    [r] = journal.values()
    assert r["status"] == "failed"
    assert "ValueError: bad input" in r["error"]


def test_the_file_is_named_after_the_worker():
    config = JournalConfig(path="/var/lib/growbin/{hostname}.db")
    assert str(config.path_for("ai@node-1")) == "/var/lib/growbin/ai@node-1.db"
    assert str(config.path_for("bad/name")) == "/var/lib/growbin/bad_name.db"
    assert str(config.directory()) == "/var/lib/growbin"
