"""The alert rules and the dashboard against real metrics: RabbitMQ's exporter and a worker's.

Each test prints what it scraped; `pytest -s` shows the report.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.deploy.promql import dashboard_exprs, metric_names
from tests.deploy.promtool import run_promtool
from tests.integration.conftest import service_missing
from tests.integration.metrics.test_worker_metrics import (
    TASK_MODULES,
    TOPOLOGY,
    free_port,
    scrape,
    task_counts,
)

from growbin.ops.alerts import render_rules
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

EXPORTER = os.environ.get("GROWBIN_TEST_RABBITMQ_PROMETHEUS_URL", "http://127.0.0.1:15692")
DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "dashboard.json"


def exporter_samples(vhost: str) -> dict[tuple[str, str], dict[str, float]]:
    """{(metric, queue): {...}} for one vhost, from the per-object endpoint alerts use."""
    try:
        text = httpx.get(f"{EXPORTER}/metrics/per-object", timeout=10).text
    except httpx.HTTPError as exc:
        service_missing(f"RabbitMQ's Prometheus plugin is not reachable at {EXPORTER}: {exc}")
    found: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("vhost") == vhost:
                found[(s.name, s.labels.get("queue", ""))] = {"value": s.value, **s.labels}
    return found


def wait_exporter(vhost: str, predicate, timeout: float = 40.0):
    # RabbitMQ refreshes queue figures every 5 s (collect_statistics_interval)
    deadline = time.monotonic() + timeout
    while True:
        samples = exporter_samples(vhost)
        if predicate(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(1)


@pytest.fixture
def topology(broker_api, temp_vhost):
    live = loader.load(TOPOLOGY).topology.model_copy(update={"vhost": temp_vhost})
    apply(live, broker_api)
    return live


def test_every_rabbitmq_metric_on_the_dashboard_is_one_rabbitmq_exports(topology, temp_vhost):
    used = set().union(
        *(metric_names(e) for e in dashboard_exprs(json.loads(DASHBOARD.read_text())))
    )
    wanted = {n for n in used if n.startswith("rabbitmq_")}
    samples = wait_exporter(temp_vhost, lambda s: ("rabbitmq_queue_messages", "q.dlq") in s)
    exported = {name for name, _ in samples}
    print(f"\ndashboard uses {sorted(wanted)}; RabbitMQ exports {len(exported)} per-queue names")
    assert wanted <= exported, f"not exported by RabbitMQ: {sorted(wanted - exported)}"


def test_the_dead_letter_alert_fires_on_a_real_backlog_of_dead_letters(
    topology, temp_vhost, service_env, start_worker, tmp_path
):
    from growbin.runtime.celery_app import create_app
    from growbin.runtime.registry import registrars
    from growbin.settings import load_settings

    port = free_port()
    env = {
        **service_env,
        "GROWBIN_TOPOLOGY": TOPOLOGY,
        "GROWBIN_TASK_MODULES": TASK_MODULES,
        "GROWBIN_METRICS_PORT": str(port),
        "GROWBIN_METRICS_ADDR": "127.0.0.1",
        "GROWBIN_METRICS_DIR": str(tmp_path / "metrics"),
    }
    settings = load_settings(
        broker_url=env["GROWBIN_BROKER_URL"],
        redis_url=env["GROWBIN_REDIS_URL"],
        topology=TOPOLOGY,
        task_modules=TASK_MODULES,
    )
    app = create_app(settings, loader.load(TOPOLOGY), registrars=registrars(settings))
    worker = start_worker("work", TOPOLOGY, "--concurrency=2", env=env)
    worker.wait_for_log("ready", timeout=60)
    failures = 110  # the topology's q.dlq alert_depth is 100, as in the seeds
    try:
        for n in range(failures):
            app.send_task("growbin.testing.fatal", args=(f"bad-{n}",))
    finally:
        app.close()

    deadline = time.monotonic() + 90
    while task_counts(scrape(port), "growbin.testing.fatal").get("dead_lettered", 0) < failures:
        assert time.monotonic() < deadline, worker.output()[-3000:]
        time.sleep(0.5)
    samples = wait_exporter(
        temp_vhost,
        lambda s: s.get(("rabbitmq_queue_messages", "q.dlq"), {}).get("value", 0) >= failures,
    )
    scraped = samples[("rabbitmq_queue_messages", "q.dlq")]
    print(f"\nworker: {failures} dead-lettered; RabbitMQ: q.dlq holds {scraped['value']:.0f}")
    assert scraped["value"] == failures

    rules = yaml.safe_load(render_rules(topology))
    (rule,) = [
        r for g in rules["groups"] for r in g["rules"] if r["alert"] == "DeadLetterQueueBacklog"
    ]
    threshold = float(rule["expr"].rsplit(">=", 1)[1])
    assert scraped["value"] >= threshold

    # The same rule, evaluated by Prometheus's engine on the scraped series.
    (tmp_path / "alerts.yml").write_text(render_rules(topology))
    labels = {"vhost": temp_vhost, "queue": "q.dlq"}
    series = "rabbitmq_queue_messages{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    value = int(scraped["value"])
    case = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [{"series": series, "values": f"{value}x10"}],
                "alert_rule_test": [
                    {
                        "eval_time": "2m",
                        "alertname": "DeadLetterQueueBacklog",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", **labels},
                                "exp_annotations": {
                                    k: v.replace("{{ $value }}", str(value))
                                    for k, v in rule["annotations"].items()
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "live_test.yml").write_text(yaml.safe_dump(case, sort_keys=False))
    result = run_promtool("test", "rules", "live_test.yml", cwd=tmp_path)
    print(result.stdout.strip())
    assert result.returncode == 0, result.stdout + result.stderr
