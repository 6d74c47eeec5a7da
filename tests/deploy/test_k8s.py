"""deploy/k8s: the per-profile manifests are generated from the topology, both overlays render
with kustomize, built-in kinds validate against Kubernetes' schemas, the custom resources carry
what their operators require."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.deploy.tools import DEPLOY, run, tool

from growbin.deploy.k8s import render_k8s
from growbin.deploy.profiles import JOURNAL_DIR, MAX_REPLICA_FACTOR, longest_task
from growbin.topology import loader

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30.0"
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "RabbitmqCluster"}
POD_KINDS = {"Deployment", "Job"}


def kustomize(overlay: str) -> list[dict[str, Any]]:
    kubectl = tool("kubectl", "https://kubernetes.io/docs/tasks/tools/")
    result = run(kubectl, "kustomize", K8S / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return kustomize("production")


@pytest.fixture(scope="module")
def dev() -> list[dict[str, Any]]:
    return kustomize("dev")


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def test_the_checked_in_manifests_are_what_the_production_preset_generates():
    for name, text in render_k8s(loader.load("production")).items():
        assert (K8S / name).read_text() == text, (
            f"deploy/k8s/{name} is stale: regenerate it with "
            "`growbin deploy render k8s --out deploy/k8s`"
        )


def test_production_runs_one_deployment_and_one_scaled_object_per_worker_profile(production):
    topology = loader.load("production").topology
    expected = {f"worker-{p}" for p in topology.profiles}
    deployments = of_kind(production, "Deployment")
    assert {n for n in deployments if n.startswith("worker-")} == expected
    assert set(of_kind(production, "ScaledObject")) == expected
    assert set(of_kind(production, "PodDisruptionBudget")) >= expected | {"api", "beat"}
    assert deployments["beat"]["spec"]["replicas"] == 2
    assert {"api", "beat"} <= set(deployments)
    assert "api" in of_kind(production, "Service")
    assert "api" in of_kind(production, "HorizontalPodAutoscaler")
    assert "growbin-migrate" in of_kind(production, "Job")
    assert of_kind(production, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 3


@pytest.mark.parametrize("overlay", ["production", "dev"])
def test_every_built_in_object_validates_against_the_kubernetes_schema(overlay):
    checked = 0
    for doc in kustomize(overlay):
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(map(str, exc.path))
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {exc.message}")
        checked += 1
    assert checked >= 15


def test_the_schema_validator_refuses_a_misspelt_field(production):
    deployment = of_kind(production, "Deployment")["worker-ai"]
    pod_spec(deployment)["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def custom_resource_problems(doc: dict[str, Any], names: set[str]) -> list[str]:
    """What the KEDA and RabbitMQ operators require of their objects (their CRDs' schemas)."""
    kind, spec = doc["kind"], doc.get("spec") or {}
    problems = []
    if not doc.get("metadata", {}).get("name"):
        problems.append("metadata.name is required")
    if kind == "ScaledObject":
        if doc["apiVersion"] != "keda.sh/v1alpha1":
            problems.append(f"apiVersion {doc['apiVersion']}")
        if spec.get("scaleTargetRef", {}).get("name") not in names:
            problems.append("spec.scaleTargetRef.name must name a Deployment of the render")
        if not spec.get("triggers"):
            problems.append("spec.triggers is required")
        for trigger in spec.get("triggers", []):
            meta = trigger.get("metadata", {})
            if trigger.get("type") != "rabbitmq" or not meta.get("queueName"):
                problems.append(f"trigger {trigger}: type rabbitmq with a queueName")
            if meta.get("mode") not in ("QueueLength", "MessageRate") or not meta.get("value"):
                problems.append(f"trigger {trigger}: mode and value are required together")
            if not str(meta.get("value", "")).isdigit():
                problems.append(f"trigger {trigger}: value must be a string of digits")
        if not 0 <= spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100):
            problems.append("minReplicaCount above maxReplicaCount")
    elif kind == "TriggerAuthentication":
        for ref in spec.get("secretTargetRef", []):
            if not {"parameter", "name", "key"} <= set(ref):
                problems.append(f"secretTargetRef {ref} needs parameter, name and key")
    elif kind == "RabbitmqCluster":
        if doc["apiVersion"] != "rabbitmq.com/v1beta1":
            problems.append(f"apiVersion {doc['apiVersion']}")
        if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 1:
            problems.append("spec.replicas must be a positive integer")
        plugins = spec.get("rabbitmq", {}).get("additionalPlugins", [])
        if not {"rabbitmq_management", "rabbitmq_prometheus"} <= set(plugins):
            problems.append("the management and prometheus plugins must be enabled")
    return problems


@pytest.mark.parametrize("overlay", ["production", "dev"])
def test_the_custom_resources_carry_what_their_operators_require(overlay):
    docs = kustomize(overlay)
    names = set(of_kind(docs, "Deployment"))
    custom = [d for d in docs if d["kind"] in CUSTOM_KINDS]
    assert custom
    for doc in custom:
        assert custom_resource_problems(doc, names) == [], doc["metadata"]["name"]


def test_the_custom_resource_check_reports_a_scaled_object_without_target_or_triggers():
    broken = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"}}
    assert custom_resource_problems(broken, {"worker-ai"}) == [
        "spec.scaleTargetRef.name must name a Deployment of the render",
        "spec.triggers is required",
    ]


def test_each_scaled_object_scales_on_its_profiles_queues_within_the_topologys_replicas(
    production,
):
    topology = loader.load("production").topology
    scalers = of_kind(production, "ScaledObject")
    for name, profile in topology.profiles.items():
        spec = scalers[f"worker-{name}"]["spec"]
        assert spec["minReplicaCount"] == profile.replicas
        assert spec["maxReplicaCount"] == profile.replicas * MAX_REPLICA_FACTOR
        assert [t["metadata"]["queueName"] for t in spec["triggers"]] == profile.queues
        assert all(t["metadata"]["vhostName"] == topology.vhost for t in spec["triggers"])
    # q.ai pages at 1,000 messages: the last of its 12 replicas comes at that depth
    (ai,) = scalers["worker-ai"]["spec"]["triggers"]
    assert ai["metadata"]["value"] == "84"
    assert ai["authenticationRef"]["name"] in of_kind(production, "TriggerAuthentication")


def test_workers_get_their_resources_probes_journal_and_a_grace_beyond_their_longest_task(
    production,
):
    topology = loader.load("production").topology
    deployments = of_kind(production, "Deployment")
    for name, profile in topology.profiles.items():
        spec = pod_spec(deployments[f"worker-{name}"])
        (container,) = spec["containers"]
        assert container["args"] == ["growbin", "worker", "--profile", name]
        probe = ["growbin", "worker", "probe", "--profile", name]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[kind]["exec"]["command"] == probe, (name, kind)
        assert {"requests", "limits"} <= set(container["resources"])
        assert spec["terminationGracePeriodSeconds"] > longest_task(topology, name)
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts[JOURNAL_DIR]]
        assert deployments[f"worker-{name}"]["spec"]["replicas"] == profile.replicas
    # the batch profile's 600 s limit: its pods get 10 minutes and the final sync
    assert pod_spec(deployments["worker-batch"])["terminationGracePeriodSeconds"] == 630


@pytest.mark.parametrize("overlay", ["production", "dev"])
def test_every_pod_runs_as_non_root_without_privileges(overlay):
    for doc in kustomize(overlay):
        if doc["kind"] not in POD_KINDS:
            continue
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        for container in spec["containers"] + spec.get("initContainers", []):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, container["name"]
            assert security["readOnlyRootFilesystem"] is True, container["name"]
            assert security["capabilities"]["drop"] == ["ALL"], container["name"]


@pytest.mark.parametrize("overlay", ["production", "dev"])
def test_credentials_come_from_secrets_and_the_topology_from_a_config_map(overlay):
    docs = kustomize(overlay)
    assert not of_kind(docs, "Secret"), "Secrets are created by hand, never committed"
    config_maps = set(of_kind(docs, "ConfigMap"))
    for doc in docs:
        if doc["kind"] not in POD_KINDS:
            continue
        spec = pod_spec(doc)
        for container in spec["containers"] + spec.get("initContainers", []):
            assert "env" not in container, "settings come from the ConfigMap and the Secret"
            refs = container["envFrom"]
            assert refs[1] == {"secretRef": {"name": "growbin-secrets"}}
            assert refs[0]["configMapRef"]["name"] in config_maps
        topology = [v for v in spec["volumes"] if v["name"] == "topology"]
        assert topology and topology[0]["configMap"]["name"] in config_maps
        assert topology[0]["configMap"]["name"].startswith("growbin-topology-")


def test_the_topology_config_map_holds_the_preset_the_workers_were_rendered_from(production):
    (config,) = [m for n, m in of_kind(production, "ConfigMap").items() if "topology" in n]
    shipped = loader.parse(config["data"]["topology.yaml"]).topology
    assert shipped == loader.load("production").topology


def test_dev_runs_one_of_everything_without_autoscaling(dev):
    assert not of_kind(dev, "ScaledObject")
    assert all(d["spec"]["replicas"] == 1 for d in of_kind(dev, "Deployment").values())
    assert of_kind(dev, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 1
    assert {d["metadata"]["namespace"] for d in dev if d["kind"] != "Namespace"} == {"growbin-dev"}
