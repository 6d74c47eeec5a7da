"""bench/run.py is one command; here only its arguments are checked (the bench is not a test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bench.common import latency_summary, percentile
from bench.run import SCENARIOS, parse_args

REPO = Path(__file__).resolve().parents[2]


def test_quick_runs_every_scenario_and_only_picks_some():
    args = parse_args(["--quick"])
    assert args.quick and args.only == list(SCENARIOS)
    assert parse_args(["--only", "throughput, isolation"]).only == ["throughput", "isolation"]


def test_an_unknown_scenario_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--only", "speed"])
    assert "choose from isolation, throughput, scan_chain" in capsys.readouterr().err


def test_the_command_explains_itself_without_services():
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0 and "--quick" in result.stdout


def test_percentiles_are_values_that_were_measured():
    values = [i / 100 for i in range(1, 101)]
    assert percentile(values, 50) == 0.5 and percentile(values, 99) == 0.99
    summary = latency_summary([0.01, 0.02, 0.5], expected=4)
    assert summary["count"] == 3 and summary["expected"] == 4 and summary["p99_ms"] == 500.0
