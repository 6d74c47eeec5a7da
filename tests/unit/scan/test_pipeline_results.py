"""Scan steps never touch the result backend: a Redis outage cannot fail a finished step."""

from __future__ import annotations

from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import ALL_TASKS
from growbin.scan.pipeline import TASKS, scan_chain
from growbin.settings import Settings
from growbin.topology import loader


def test_scan_steps_store_no_result_so_submitting_a_scan_never_waits_on_redis():
    app = create_app(Settings(), loader.load("production"), registrars=ALL_TASKS)
    try:
        assert all(app.tasks[name].ignore_result for name in TASKS.values())
        first = scan_chain(app, "scan-1").tasks[0]
        assert first.type.ignore_result  # the API publishes it with ignore_result set
    finally:
        app.close()
