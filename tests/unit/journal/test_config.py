"""Journal settings from GROWBIN_JOURNAL_*, and event rows."""

import pytest

from growbin.errors import ConfigError
from growbin.journal.config import JournalConfig
from growbin.journal.rows import JournalRow, row_from_event
from growbin.runtime.hooks import TaskEvent


def test_journal_settings_come_from_growbin_journal_variables(monkeypatch):
    monkeypatch.setenv("GROWBIN_JOURNAL_SYNCHRONOUS", "FULL")
    monkeypatch.setenv("GROWBIN_JOURNAL_SYNC_INTERVAL", "2")
    config = JournalConfig.load()
    assert config.synchronous == "FULL" and config.sync_interval == 2.0
    assert config.path == ".growbin/journal/{hostname}.db"


def test_a_bad_journal_setting_names_its_variable(monkeypatch):
    monkeypatch.setenv("GROWBIN_JOURNAL_SYNCHRONOUS", "OFF")
    with pytest.raises(ConfigError, match="GROWBIN_JOURNAL_SYNCHRONOUS"):
        JournalConfig.load()


def event(**kw):
    return TaskEvent(
        task_id="t",
        task_name="n",
        queue="q",
        routing_key="k",
        worker="w",
        retries=kw.pop("retries", 0),
        at=100.0,
        **kw,
    )


def test_a_retry_is_filed_under_the_next_attempt():
    r = row_from_event("retried", event(retries=0, error="TimeoutError: slow"))
    assert (r.status, r.retry_count, r.rank) == ("retrying", 1, 10)
    assert r.rank > JournalRow("t", "n", "completed", 0).rank


def test_a_finished_event_carries_its_start_time_from_the_runtime():
    r = row_from_event("succeeded", event(runtime=2.5))
    assert (r.started_at, r.completed_at) == (97.5, 100.0)


def test_a_huge_payload_is_summarised_not_stored():
    r = row_from_event("received", event(args=("x" * 20_000,)))
    assert r.payload is not None and len(r.payload) < 1000 and '"truncated": true' in r.payload
