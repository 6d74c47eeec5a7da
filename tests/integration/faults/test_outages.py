"""Outages of Redis and PostgreSQL under load, on a production-preset deployment of its own.

The small run of bench/outages.py (see there for the deployment and the accounting): about 40
scans and 100 small tasks, the service down for 8-10 s in the middle, then nobody touches
anything. Each test prints its accounting tables (`pytest -s` shows them) and asserts issue
10's guarantees: every accepted scan ends done or failed, nothing is lost, no queue keeps an
unacknowledged message once all is quiet, and no process was restarted.
"""

from __future__ import annotations

from typing import Any

import pytest
from bench.outages import print_report, quick_plan, run_outage

pytestmark = pytest.mark.integration


def run(service: str, temp_vhost: str, redis: Any, postgres: Any, tmp_path: Any) -> dict[str, Any]:
    plan = quick_plan(service)
    result = run_outage(plan, tmp_path, vhost=temp_vhost, redis=redis, postgres=postgres)
    print_report(result)
    # the outage really happened in the middle of accepted work (while PostgreSQL is down,
    # scans are refused at submit: their row cannot be written)
    assert result["timing"]["down_for_s"] >= plan.outage
    assert result["scans"]["accepted"] >= plan.scans // 4
    assert result["small_tasks"]["accepted"] >= plan.tasks // 4
    return result


def assert_guarantees(result: dict[str, Any]) -> None:
    scans, tasks = result["scans"], result["small_tasks"]
    unfinished = {k: scans[k] for k in ("queued", "running")} | scans["other"]
    assert scans["accepted"] == scans["done"] + scans["failed"], (
        f"accepted scans not done or failed: {unfinished}"
    )
    assert scans["lost"] == 0, f"{scans['lost']} scans neither terminal nor dead-lettered"
    assert tasks["lost"] == 0, (
        f"{tasks['lost']} small tasks neither finished nor dead-lettered: "
        f"{tasks['by_journal_state']}"
    )
    unacked = {q: v["unacked"] for q, v in result["queues"].items() if v["unacked"]}
    assert unacked == {}, f"unacknowledged messages left once all was quiet: {unacked}"
    assert result["unacked_settled"], "the management API's counters never held still"
    assert result["restarted"] == [], f"processes that died or restarted: {result['processes']}"


def test_redis_killed_under_load_leaves_every_scan_finished_and_no_message_unacked(
    temp_vhost, private_redis, private_postgres, tmp_path
):
    assert_guarantees(run("redis", temp_vhost, private_redis, private_postgres, tmp_path))


def test_postgresql_crashed_under_load_leaves_every_scan_finished_and_no_message_unacked(
    temp_vhost, private_redis, private_postgres, tmp_path
):
    assert_guarantees(run("postgresql", temp_vhost, private_redis, private_postgres, tmp_path))
