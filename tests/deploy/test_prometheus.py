"""The Prometheus files in deploy/: generated from the topology, valid, and tested with promtool."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.deploy.promtool import run_promtool

from growbin.ops.alerts import render_rules, short_work_queues
from growbin.topology import loader

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def rules_by_name(text: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            found.setdefault(rule["alert"], []).append(rule)
    return found


def test_the_checked_in_rules_are_what_the_production_preset_generates():
    expected = render_rules(loader.load("production").topology)
    assert (DEPLOY / "alerts.yml").read_text() == expected, (
        "deploy/prometheus/alerts.yml is stale: regenerate it with "
        "`python -m growbin.ops.alerts production > deploy/prometheus/alerts.yml`"
    )


def test_the_rules_carry_the_seed_thresholds_and_severities():
    rules = rules_by_name((DEPLOY / "alerts.yml").read_text())
    depth = {
        r["labels"]["queue"]: (r["expr"], r["labels"]["severity"])
        for r in (rules["QueueBacklog"] + rules["DeadLetterQueueBacklog"])
    }
    assert depth["q.dlq"] == ('rabbitmq_queue_messages{vhost="/",queue="q.dlq"} >= 100', "critical")
    assert depth["q.ai"] == ('rabbitmq_queue_messages{vhost="/",queue="q.ai"} >= 1000', "critical")
    assert depth["q.batch"] == (
        'rabbitmq_queue_messages{vhost="/",queue="q.batch"} >= 500',
        "warning",
    )
    assert rules["WorkerFailureRateHigh"][0]["expr"].endswith("> 0.1")
    assert rules["TaskTooSlow"][0]["expr"].endswith("> 10")
    assert rules["RabbitMQNodeDown"][0]["labels"]["severity"] == "critical"


def test_the_slow_task_alert_leaves_out_queues_built_for_long_work():
    production = loader.load("production").topology
    slo = loader.load("slo").topology
    assert short_work_queues(production) == ["q.ai", "q.api"]
    assert short_work_queues(slo) == ["q.fast", "q.external"]


def test_a_users_topology_gets_rules_for_its_own_queues_and_vhost():
    topology = loader.load("tests/fixtures/topologies/execution.yaml").topology
    rules = rules_by_name(render_rules(topology.model_copy(update={"vhost": "shop"})))
    (dlq,) = rules["DeadLetterQueueBacklog"]
    assert dlq["expr"] == 'rabbitmq_queue_messages{vhost="shop",queue="q.dlq"} >= 100'
    assert "QueueBacklog" not in rules  # no work queue of that file has an alert_depth


def test_promtool_accepts_the_rules_file():
    result = run_promtool("check", "rules", DEPLOY / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_promtool_accepts_the_prometheus_config():
    # --syntax-only: the API token file named in it exists only where Prometheus runs
    result = run_promtool("check", "config", "--syntax-only", DEPLOY / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_prove_the_dead_letter_alert_fires_over_the_seed_threshold():
    result = run_promtool("test", "rules", "alerts_test.yml", cwd=DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
    dlq = [
        c
        for case in cases
        for c in case["alert_rule_test"]
        if c["alertname"] == "DeadLetterQueueBacklog" and c["exp_alerts"]
    ]
    assert dlq and dlq[0]["exp_alerts"][0]["exp_labels"]["queue"] == "q.dlq"


def test_a_stalled_worker_pages_whatever_its_profile():
    rules = rules_by_name((DEPLOY / "alerts.yml").read_text())
    (stalled,) = rules["WorkerStalled"]
    assert stalled["expr"] == "max by (worker) (growbin_worker_stalled) == 1"
    assert stalled["labels"]["severity"] == "critical"
