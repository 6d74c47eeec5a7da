"""The Grafana dashboard: valid JSON whose every query names metrics that exist."""

from __future__ import annotations

import json
from pathlib import Path

from tests.deploy.promql import BUILTIN, dashboard_exprs, metric_names

from growbin.ops.metrics import GrowbinMetrics
from growbin.ops.metrics_cluster import DeadLetterCollector

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboard.json"


def growbin_names() -> set[str]:
    names = GrowbinMetrics().names()
    for family in DeadLetterCollector(lambda: []).collect():
        names.add(family.name)
    return names


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_metric_names_are_read_from_promql_expressions():
    expr = (
        'sum by (profile) (label_replace(rate(celery_tasks_total{status="failed"}[5m]), '
        '"profile", "$1", "worker", "([^@]+)@.*")) / on(job) up > 0.1 and '
        "histogram_quantile(0.95, sum by (le) (rate(wal_sync_delay_seconds_bucket[15m])))"
    )
    assert metric_names(expr) == {"celery_tasks_total", "up", "wal_sync_delay_seconds_bucket"}


def test_the_dashboard_covers_queues_tasks_dead_letters_and_providers():
    dashboard = load()
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == [
        "Queues (RabbitMQ)",
        "Tasks (workers)",
        "Dead letters",
        "Providers",
        "Journal (WAL)",
    ]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"


def test_every_growbin_metric_on_the_dashboard_is_one_growbin_exports():
    used = set().union(*(metric_names(e) for e in dashboard_exprs(load())))
    ours = {n for n in used if not n.startswith("rabbitmq_")} - BUILTIN
    assert ours, "the dashboard shows no Growbin metric"
    assert ours <= growbin_names(), f"unknown metrics: {sorted(ours - growbin_names())}"
    assert {"celery_tasks_total", "gpt_api_calls_total", "growbin_dead_letters"} <= ours


def test_every_metric_in_the_alert_rules_is_one_growbin_or_rabbitmq_exports():
    import yaml

    rules = yaml.safe_load((DASHBOARD.parents[1] / "prometheus" / "alerts.yml").read_text())
    used = set().union(*(metric_names(r["expr"]) for g in rules["groups"] for r in g["rules"]))
    ours = {n for n in used if not n.startswith("rabbitmq_")} - BUILTIN
    assert ours <= growbin_names()
    assert {n for n in used if n.startswith("rabbitmq_")} == {"rabbitmq_queue_messages"}
