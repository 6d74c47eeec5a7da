"""The topology's ``schedule:`` as Celery's ``beat_schedule``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery.schedules import crontab

from growbin.topology.model import ScheduleEntry, Topology


def beat_schedule(topology: Topology) -> dict[str, dict[str, Any]]:
    return {name: beat_entry(entry) for name, entry in topology.schedule.items()}


def beat_entry(entry: ScheduleEntry) -> dict[str, Any]:
    return {
        "task": entry.task,
        "schedule": timing(entry),
        "args": tuple(entry.args),
        "kwargs": dict(entry.kwargs),
    }


def timing(entry: ScheduleEntry) -> Any:
    """A crontab for ``cron`` (minute hour day-of-month month day-of-week), else seconds."""
    if entry.cron is not None:
        minute, hour, dom, month, dow = entry.cron.split()
        return crontab(
            minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow
        )
    assert entry.every is not None  # the model requires exactly one of the two
    return timedelta(seconds=entry.every)
