"""JSON logs from real workers: one scan can be followed through every step by its scan id."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from tests.integration.scan.test_pipeline import (  # noqa: F401 - fixtures
    PIPELINE_ROUTES,
    clean_redis,
    fake_openai,
    platform,
    wait_scans,
)

from growbin.scan.intake import submit_scan
from growbin.scan.samples import load_manifest, sample_bytes
from growbin.topology import loader
from growbin.topology.resolve import resolve_route

pytestmark = pytest.mark.integration


def json_lines(*workers) -> list[dict]:
    lines = []
    for worker in workers:
        for line in worker.output().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
    return lines


def test_one_scans_log_lines_across_its_five_steps_share_its_scan_id(
    broker_api,
    temp_vhost,
    service_env,
    database_url,
    tmp_path,
    fake_openai,  # noqa: F811
    clean_redis,  # noqa: F811
    start_worker,
):
    env, app, ctx = platform(
        "pipeline", broker_api, temp_vhost, service_env, database_url, tmp_path, fake_openai
    )
    env = {**env, "GROWBIN_LOG_FORMAT": "json"}
    storage = start_worker("storage", "pipeline", "--concurrency=2", env=env)
    ai = start_worker("ai", "pipeline", "--concurrency=2", env=env)
    try:
        first, second = list(load_manifest())[:2]
        scan_id = submit_scan(app, ctx, sample_bytes(first), filename=first, owner="t").scan_id
        other = submit_scan(app, ctx, sample_bytes(second), filename=second, owner="t").scan_id
        rows = wait_scans(ctx, [scan_id, other], timeout=90)
        assert rows[scan_id]["status"] == "done", rows[scan_id]
        assert rows[other]["status"] == "done", rows[other]
    finally:
        app.close()

    lines = json_lines(storage, ai)
    assert lines, storage.output()[-2000:]
    mine = [line for line in lines if line.get("scan_id") == scan_id]
    by_task: dict[str, list[dict]] = defaultdict(list)
    for line in mine:
        by_task[line["task_name"]].append(line)
    print(f"\nscan {scan_id}: {len(mine)} JSON lines from steps {sorted(by_task)}")
    assert sorted(by_task) == sorted(f"growbin.scan.{step}" for step in PIPELINE_ROUTES)
    topology = loader.load("pipeline").topology
    for task_name, entries in by_task.items():
        route = resolve_route(topology, task_name)
        assert route is not None
        for entry in entries:
            assert entry["task_id"] and entry["level"] and entry["message"]
            assert entry["worker"].split("@")[0] in ("storage", "ai")
            assert entry["queue"] == route.queue
    # a step's lines carry one task id, and the other scan's lines never carry this scan's id
    assert all(len({e["task_id"] for e in entries}) == 1 for entries in by_task.values())
    assert any(line.get("scan_id") == other for line in lines)
