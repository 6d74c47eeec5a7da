"""Prometheus alert rules derived from the topology, with the seeds' thresholds.

Seed 000's operating guide: q.dlq over 100 critical, q.ai over 1,000 critical, q.batch over 500
warning, an AI worker failing more than 10% of its tasks warning, a task taking more than 10 s
warning, a RabbitMQ node down critical. The depth thresholds are the queues' ``alert_depth`` in
the topology, so a user's own topology gets its own rules:

    python -m growbin.ops.alerts production > deploy/prometheus/alerts.yml

Queue figures are RabbitMQ's own (``rabbitmq_queue_messages`` from its Prometheus plugin's
per-object endpoint, job ``rabbitmq``); task figures are the workers' (job
``growbin-workers``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import yaml

from growbin.topology.model import QueueRole, Topology

RABBITMQ_JOB = "rabbitmq"
WORKERS_JOB = "growbin-workers"
FAILURE_RATE = 0.10
SLOW_TASK_SECONDS = 10
# Profiles whose soft time limit is above this run long work by design (reports, exports):
# a 10 s task there is normal, so the slow-task alert leaves their queues out.
LONG_WORK_SOFT_LIMIT = 300.0
# A seed may rank one work queue's backlog as critical; the topology has no field for it.
SEED_CRITICAL_QUEUES: dict[str, tuple[str, ...]] = {"production": ("q.ai",)}

HEADER = """\
# Prometheus alert rules for Growbin, generated from the {name!r} topology:
#   python -m growbin.ops.alerts {name} > deploy/prometheus/alerts.yml
# Do not edit by hand: tests/deploy checks that this file matches the topology, validates it
# with promtool and proves the dead-letter alert fires (alerts_test.yml).
"""


def _selector(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _escape_regex(name: str) -> str:
    # PromQL strings are Go strings: a regex backslash is written twice
    return "".join("\\\\" + c if c in ".+*?()[]{}|^$\\" else c for c in name)


def queue_rules(topology: Topology, critical: Iterable[str] = ()) -> list[dict[str, Any]]:
    critical = set(critical)
    rules = []
    for name, queue in topology.queues.items():
        if queue.alert_depth is None:
            continue
        selector = _selector(vhost=topology.vhost, queue=name)
        if queue.role is QueueRole.DEAD_LETTER:
            alert, severity, wait = "DeadLetterQueueBacklog", "critical", "1m"
            what = "tasks have failed for good and wait for an operator"
            runbook = f"growbin dlq list --queue-name {name}"
        elif queue.role is QueueRole.UNROUTABLE:
            alert, severity, wait = "UnroutableMessages", "warning", "1m"
            what = "messages matched no binding (a routing key the topology does not know)"
            runbook = f"growbin dlq list --queue-name {name}"
        else:
            alert, wait = "QueueBacklog", "5m"
            severity = "critical" if name in critical else "warning"
            what = "its consumers do not keep up (too few workers, or a slow dependency)"
            runbook = "growbin status"
        rules.append(
            {
                "alert": alert,
                # alert_depth is the depth at which someone is paged, so reaching it fires
                "expr": f"rabbitmq_queue_messages{selector} >= {queue.alert_depth}",
                "for": wait,
                "labels": {"severity": severity, "queue": name},
                "annotations": {
                    "summary": f"{name} holds {queue.alert_depth} messages or more",
                    "description": f"{name} holds {{{{ $value }}}} messages: {what}.",
                    "runbook": runbook,
                },
            }
        )
    return rules


def _by_profile(selector: str) -> str:
    # the worker label is the Celery hostname, PROFILE@host
    return (
        f'sum by (profile) (label_replace(rate(celery_tasks_total{selector}[5m]), "profile", '
        f'"$1", "worker", "([^@]+)@.*"))'
    )


def short_work_queues(topology: Topology) -> list[str]:
    names = []
    for name, queue in topology.queues.items():
        profiles = [topology.profiles[p] for p in topology.profiles_consuming(name)]
        if (
            queue.role is QueueRole.WORK
            and profiles
            and all((p.soft_time_limit or 0) <= LONG_WORK_SOFT_LIMIT for p in profiles)
        ):
            names.append(name)
    return names


def task_rules(topology: Topology) -> list[dict[str, Any]]:
    failed = _by_profile('{status="failed"}')
    finished = _by_profile('{status=~"succeeded|failed"}')
    rules: list[dict[str, Any]] = [
        {
            "alert": "WorkerFailureRateHigh",
            "expr": f"({failed} / {finished}) > {FAILURE_RATE}",
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "workers of profile {{ $labels.profile }} fail over 10% of tasks",
                "description": "{{ $value | humanizePercentage }} of the tasks finished by "
                "{{ $labels.profile }} workers in 5 minutes failed for good.",
                "runbook": "growbin dlq list --newer-than 1h",
            },
        }
    ]
    short = short_work_queues(topology)
    if short:
        pattern = "|".join(_escape_regex(q) for q in short)
        rules.append(
            {
                "alert": "TaskTooSlow",
                "expr": (
                    "histogram_quantile(0.95, sum by (le, queue, task_name) "
                    f'(rate(celery_task_duration_seconds_bucket{{queue=~"{pattern}"}}[5m]))) '
                    f"> {SLOW_TASK_SECONDS}"
                ),
                "for": "5m",
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": "{{ $labels.task_name }} takes over 10 s (p95)",
                    "description": "95% of {{ $labels.task_name }} runs on {{ $labels.queue }} "
                    "finish within {{ $value | humanizeDuration }}; the seed's budget is 10 s.",
                },
            }
        )
    return rules


def platform_rules() -> list[dict[str, Any]]:
    return [
        {
            "alert": "RabbitMQNodeDown",
            "expr": f'up{{job="{RABBITMQ_JOB}"}} == 0',
            "for": "1m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "RabbitMQ node {{ $labels.instance }} is down",
                "description": "Prometheus cannot scrape {{ $labels.instance }}: the node is "
                "down or its Prometheus plugin is off.",
            },
        },
        {
            "alert": "WorkerMetricsDown",
            "expr": f'up{{job="{WORKERS_JOB}"}} == 0',
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "worker {{ $labels.instance }} does not answer /metrics",
                "description": "The worker is down, or its metrics port was taken "
                "(see its log; set GROWBIN_METRICS_PORT).",
            },
        },
        {
            # The worker decides "stalled" against its own threshold (its profile's hard time
            # limit + 60 s by default, growbin.runtime.progress), so one rule fits every profile.
            "alert": "WorkerStalled",
            "expr": "max by (worker) (growbin_worker_stalled) == 1",
            "for": "1m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "worker {{ $labels.worker }} holds tasks and makes no progress",
                "description": "{{ $labels.worker }} has held reserved messages without "
                "finishing or starting a task for longer than its stall threshold: its "
                "prefetch slots are lost to requests that never end. Restarting it returns "
                "the messages to their queue.",
                "runbook": "growbin status",
            },
        },
        {
            "alert": "ProviderCircuitOpen",
            "expr": "max by (provider) (growbin_breaker_state) == 2",
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "the circuit to {{ $labels.provider }} has been open for 5 minutes",
                "description": "Calls to {{ $labels.provider }} fail fast; tasks that need it "
                "retry and may dead-letter.",
            },
        },
    ]


def render_rules(topology: Topology, critical: Iterable[str] | None = None) -> str:
    """The rules file for ``topology`` as YAML text."""
    if critical is None:
        critical = SEED_CRITICAL_QUEUES.get(topology.name, ())
    groups = [
        {"name": "growbin-queues", "rules": queue_rules(topology, critical)},
        {"name": "growbin-tasks", "rules": task_rules(topology)},
        {"name": "growbin-platform", "rules": platform_rules()},
    ]
    body = yaml.safe_dump({"groups": groups}, sort_keys=False, allow_unicode=True, width=1000)
    return HEADER.format(name=topology.name) + body


def main(argv: list[str] | None = None) -> int:
    from growbin.topology import loader

    args = sys.argv[1:] if argv is None else argv
    source = args[0] if args else "production"
    sys.stdout.write(render_rules(loader.load(source).topology))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
