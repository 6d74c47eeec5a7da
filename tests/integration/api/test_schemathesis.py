"""A schema-driven fuzz run against the OpenAPI document: no input makes the API answer 5xx.

Schemathesis (its command line, against the running server) generates valid and invalid
requests for every operation from the spec, with an admin key so every route is reached; a
second, deeper run covers the admin endpoints (and /metrics) alone.
503 (a refusal the API means to give) and the seed's 500 for a failed task are not what this
looks for; neither can happen here: the broker takes everything and no task runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from tests.integration.api.conftest import ROOMY_QUOTAS, write_api_topology

from growbin.api.config import ApiConfig

pytestmark = pytest.mark.integration


FUZZ_QUOTAS = {
    # the fuzzer is one key sending hundreds of requests: quotas would answer most of them 429
    # (never 5xx, but the routes behind would go untested)
    **ROOMY_QUOTAS,
    "quota_rate": "100000/m",
    "quota_burst": 10000,
    "quota_in_flight": 100000,
    "quota_delayed_in_flight": 100000,
    "quota_streams": 1000,
}


def fuzz(start_api, broker_api, tmp_path, *options: str, max_examples: int) -> None:
    pytest.importorskip("schemathesis", reason="schemathesis is not installed (a dev dependency)")
    config = ApiConfig(
        # URLs must never be fetched from a fuzzer: only a host that does not resolve is allowed
        fetch_allowed_hosts=("images.invalid",),
        sse_max_seconds=2.0,
        sse_heartbeat=1.0,
        **FUZZ_QUOTAS,
    )
    api = start_api(write_api_topology(tmp_path / "t.yaml"), broker_api=broker_api, config=config)
    key = api.key("fuzzer", "admin")
    report = tmp_path / "report.json"
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(max_examples),
            "--phases",
            "examples,coverage,fuzzing",
            "--header",
            f"Authorization: Bearer {key}",
            "--request-timeout",
            "20",
            "--seed",
            "1",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.monotonic() - started
    tail = run.stdout[-6000:]
    print(f"\nschemathesis: exit {run.returncode} after {seconds:.0f} s\n{tail[-1500:]}")
    assert run.returncode == 0, tail + run.stderr[-2000:]
    if report.exists():
        json.loads(report.read_text())  # a readable report was written


def test_a_fuzz_run_against_the_openapi_spec_finds_no_server_error(start_api, broker_api, tmp_path):
    fuzz(start_api, broker_api, tmp_path, max_examples=20)


def test_a_deeper_fuzz_run_of_every_admin_endpoint_finds_no_server_error(
    start_api, broker_api, tmp_path
):
    fuzz(
        start_api,
        broker_api,
        tmp_path,
        "--include-path-regex",
        "^/(v1/admin|metrics)",
        max_examples=80,
    )
