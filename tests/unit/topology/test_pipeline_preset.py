"""The pipeline preset carries seed 004's per-step time limits and retry policies."""

from __future__ import annotations

import pytest

from growbin.topology import loader
from growbin.topology.findings import Severity
from growbin.topology.lint import lint


@pytest.mark.parametrize(
    ("task", "hard", "retries", "first_delay", "jitter"),
    [
        ("growbin.scan.preprocess", 300, 3, 20, False),
        ("growbin.scan.classify", 60, 5, 30, True),
        ("growbin.scan.rules", 10, 3, 20, False),
        ("growbin.scan.guidance", 30, 3, 20, False),
    ],
)
def test_each_step_has_the_seeds_time_limit_and_retry_policy(
    task, hard, retries, first_delay, jitter
):
    route = loader.load("pipeline").topology.routes[task]
    assert route.time_limit == hard
    assert route.soft_time_limit is not None and route.soft_time_limit < hard
    assert route.retry is not None
    assert (route.retry.max_retries, route.retry.delay(0), route.retry.jitter) == (
        retries,
        first_delay,
        jitter,
    )


@pytest.mark.parametrize("version", ["3.10.8", "3.13", "4.1"])
def test_the_pipeline_preset_lints_without_errors_or_warnings(version):
    findings = lint(loader.load("pipeline"), rabbitmq_version=version)
    assert [f for f in findings if f.severity is not Severity.INFO] == []
