"""The per-profile Kubernetes manifests: a Deployment, a PodDisruptionBudget and a KEDA
ScaledObject for each worker profile, and the topology the pods read.

    growbin deploy render k8s --out deploy/k8s

(``-t`` names another topology) writes ``base/workers.yaml``, ``base/topology.yaml`` (the
ConfigMap's content) and ``components/autoscaling/scaledobjects.yaml``; the rest of
``deploy/k8s`` (RabbitMQ, API, beat, migration Job, overlays) is written by hand and refers to
these by name.
"""

from __future__ import annotations

from typing import Any

from growbin.deploy.manifests import dump, header, render_command, topology_text
from growbin.deploy.profiles import (
    IMAGE_DIR,
    JOURNAL_DIR,
    METRICS_PORT,
    ProfileDeploy,
    profile_deploys,
)
from growbin.topology.loader import LoadedTopology

OUT = "deploy/k8s"
WORKERS_FILE = "base/workers.yaml"
TOPOLOGY_FILE = "base/topology.yaml"
SCALERS_FILE = "components/autoscaling/scaledobjects.yaml"

IMAGE = "growbin"  # the overlays pin it (kustomize `images:`)
CONFIG_MAP = "growbin-config"
TOPOLOGY_CONFIG_MAP = "growbin-topology"
SECRET = "growbin-secrets"  # noqa: S105 - the name of the Secret, not a secret
IMAGES_CLAIM = "growbin-images"
TRIGGER_AUTH = "growbin-rabbitmq"
USER_ID = 10001


def labels(profile: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "growbin",
        "app.kubernetes.io/component": "worker",
        "growbin.io/profile": profile,
    }


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "fsGroup": USER_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _probe(d: ProfileDeploy, period: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": d.probe()},
        "periodSeconds": period,
        "timeoutSeconds": 10,
        "failureThreshold": failures,
    }


def deployment(d: ProfileDeploy) -> dict[str, Any]:
    r = d.resources
    container = {
        "name": "worker",
        "image": IMAGE,
        # args, not command: the image's entrypoint (tini) forwards SIGTERM and reaps children
        "args": d.command(),
        "envFrom": [{"configMapRef": {"name": CONFIG_MAP}}, {"secretRef": {"name": SECRET}}],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "resources": {
            "requests": {"cpu": r.cpu_request, "memory": r.memory_request},
            "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit},
        },
        # connecting and checking the vhost at start may take a while on a busy cluster
        "startupProbe": _probe(d, period=5, failures=36),
        "readinessProbe": _probe(d, period=15, failures=2),
        # a few missed probes (a broker failover takes seconds) before a restart
        "livenessProbe": _probe(d, period=30, failures=5),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "journal", "mountPath": JOURNAL_DIR},
            {"name": "images", "mountPath": IMAGE_DIR},
            {"name": "topology", "mountPath": "/etc/growbin", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": d.service, "labels": labels(d.name)},
        "spec": {
            "replicas": d.min_replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": labels(d.name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": labels(d.name),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        "growbin.io/longest-task-seconds": f"{d.longest_task:g}",
                    },
                },
                "spec": {
                    # SIGTERM: finish the tasks held (up to the longest time limit), then the
                    # journal's final sync to PostgreSQL; only then may the pod be killed
                    "terminationGracePeriodSeconds": d.grace_seconds,
                    "automountServiceAccountToken": False,
                    # no *_SERVICE_HOST/_PORT variables for every Service in the namespace
                    "enableServiceLinks": False,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": [
                        # the pod's journal: kept across container restarts (synced at the
                        # next start), synced one last time when the pod stops
                        {"name": "journal", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "images", "persistentVolumeClaim": {"claimName": IMAGES_CLAIM}},
                        {"name": "topology", "configMap": {"name": TOPOLOGY_CONFIG_MAP}},
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
                    ],
                },
            },
        },
    }


def disruption_budget(d: ProfileDeploy) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": d.service, "labels": labels(d.name)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(d.name)}},
    }


def scaled_object(d: ProfileDeploy, vhost: str) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": d.service, "labels": labels(d.name)},
        "spec": {
            "scaleTargetRef": {"name": d.service},
            "minReplicaCount": d.min_replicas,
            "maxReplicaCount": d.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        # one pod at a time: each leaving pod drains its tasks first
                        "scaleDown": {
                            "stabilizationWindowSeconds": 300,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                        }
                    }
                }
            },
            "triggers": [
                {
                    "type": "rabbitmq",
                    "name": t.queue.replace(".", "-").replace("_", "-"),
                    "metadata": {
                        "protocol": "amqp",
                        "mode": "QueueLength",
                        "queueName": t.queue,
                        "vhostName": vhost,
                        "value": str(t.per_replica),
                    },
                    "authenticationRef": {"name": TRIGGER_AUTH},
                }
                for t in d.triggers
            ],
        },
    }


def _scaling_notes(deploys: list[ProfileDeploy]) -> str:
    lines = ["# Per profile: min = the topology's replicas, max = 4x; one replica per N messages:"]
    for d in deploys:
        bases = "; ".join(f"{t.queue} {t.per_replica} ({t.basis})" for t in d.triggers)
        lines.append(f"#   {d.service}: {d.min_replicas}..{d.max_replicas}, {bases}")
    return "\n".join(lines) + "\n"


def render_k8s(loaded: LoadedTopology) -> dict[str, str]:
    """The generated files, keyed by their path under deploy/k8s."""
    deploys = profile_deploys(loaded)
    command = render_command(loaded, "k8s", OUT)
    workers: list[dict[str, Any]] = []
    for d in deploys:
        workers += [deployment(d), disruption_budget(d)]
    vhost = loaded.topology.vhost
    scalers = [scaled_object(d, vhost) for d in deploys]
    return {
        WORKERS_FILE: header("Worker Deployments and PodDisruptionBudgets", loaded, command)
        + dump(workers),
        TOPOLOGY_FILE: header("The topology every pod reads", loaded, command)
        + topology_text(loaded),
        SCALERS_FILE: header("KEDA ScaledObjects, one per worker profile", loaded, command)
        + _scaling_notes(deploys)
        + dump(scalers),
    }
