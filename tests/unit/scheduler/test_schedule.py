"""The topology's schedule as Celery beat entries, and the scheduler's settings."""

from datetime import timedelta

import pytest
from celery.schedules import crontab

from growbin.errors import ConfigError
from growbin.scheduler.config import BeatConfig
from growbin.scheduler.schedule import beat_schedule
from growbin.topology import loader


@pytest.mark.parametrize("preset", ["production", "slo", "pipeline"])
def test_every_preset_carries_the_seed_schedule(preset):
    schedule = beat_schedule(loader.load(preset).topology)
    tasks = {e["task"]: e["schedule"] for e in schedule.values()}
    assert tasks["growbin.journal.sync"] == timedelta(seconds=300)
    assert tasks["growbin.journal.checkpoint"] == timedelta(seconds=3600)
    assert "growbin.jobs.weekly_report" in tasks


def test_a_cron_entry_becomes_a_crontab_with_the_same_fields():
    schedule = beat_schedule(loader.load("production").topology)
    weekly = schedule["weekly-report"]["schedule"]
    assert isinstance(weekly, crontab)
    assert weekly == crontab(minute="0", hour="9", day_of_week="1")
    assert schedule["daily-stats"]["schedule"] == crontab(minute="0", hour="2")
    assert schedule["hourly-cache-cleanup"]["schedule"] == crontab(minute="0")


def test_the_lock_keys_belong_to_one_topology_on_one_vhost():
    config = BeatConfig()
    assert config.namespace("production", "amqp://u:p@h:5672//") == "growbin:beat:production:/"
    assert config.namespace("slo", "amqp://u:p@h/growbin") == "growbin:beat:slo:growbin"


def test_the_lock_is_renewed_three_times_per_timeout(monkeypatch):
    monkeypatch.setenv("GROWBIN_BEAT_LOCK_TIMEOUT", "9")
    assert BeatConfig.load().renew_interval == 3.0
    monkeypatch.setenv("GROWBIN_BEAT_LOCK_TIMEOUT", "0.1")
    with pytest.raises(ConfigError, match="GROWBIN_BEAT_LOCK_TIMEOUT"):
        BeatConfig.load()
