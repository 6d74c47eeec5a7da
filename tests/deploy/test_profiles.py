"""What a profile's deployment gets from the topology: grace, scaling thresholds, names."""

from __future__ import annotations

import pytest

from growbin.deploy.profiles import (
    NO_LIMIT_SECONDS,
    SHUTDOWN_MARGIN,
    TASKS_PER_SLOT,
    longest_task,
    profile_deploys,
)
from growbin.errors import TopologyError
from growbin.topology import loader
from growbin.topology.model import Route

MINIMAL = """\
version: 1
name: small
exchanges:
  tasks: {type: direct}
queues:
  q.work: {bindings: [{exchange: tasks, routing_key: work}]}
routes:
  app.work: {exchange: tasks, routing_key: work}
profiles:
  PROFILE:
    queues: [q.work]
    concurrency: 3
"""


def by_name(loaded: loader.LoadedTopology) -> dict[str, object]:
    return {d.name: d for d in profile_deploys(loaded)}


def test_a_route_with_a_longer_time_limit_than_its_profile_sets_the_grace():
    loaded = loader.load("production")
    routes = dict(loaded.topology.routes)
    routes["growbin.scan.slow"] = Route(exchange="tasks", routing_key="ai.slow", time_limit=900)
    topology = loaded.topology.model_copy(update={"routes": routes})
    assert longest_task(loaded.topology, "ai") == 120
    assert longest_task(topology, "ai") == 900
    assert longest_task(topology, "api") == 60  # the route does not reach q.api


def test_a_profile_without_a_time_limit_gets_the_stall_detectors_assumption():
    loaded = loader.parse(MINIMAL.replace("PROFILE", "work"))
    (deploy,) = profile_deploys(loaded)
    assert deploy.longest_task == NO_LIMIT_SECONDS
    assert deploy.grace_seconds == NO_LIMIT_SECONDS + SHUTDOWN_MARGIN


def test_scaling_thresholds_come_from_alert_depth_then_max_length_then_pool_size():
    production = by_name(loader.load("production"))
    (ai,) = production["ai"].triggers  # type: ignore[attr-defined]
    assert (ai.queue, ai.per_replica) == ("q.ai", 84)  # 1000 / 12, rounded up
    batch, sched = production["batch"].triggers  # type: ignore[attr-defined]
    assert (batch.queue, batch.per_replica) == ("q.batch", 63)  # 500 / 8
    assert (sched.queue, sched.per_replica) == ("q.sched", 32)  # 500 / 2 / 8
    (plain,) = profile_deploys(loader.parse(MINIMAL.replace("PROFILE", "work")))[0].triggers
    assert plain.per_replica == 3 * TASKS_PER_SLOT


def test_a_profile_name_kubernetes_cannot_use_is_refused_with_its_line_and_the_fix():
    loaded = loader.parse(MINIMAL.replace("PROFILE", "Image_Upload"), source="mine.yaml")
    with pytest.raises(TopologyError, match=r"mine\.yaml:10: .*'Image_Upload'.*lower case"):
        profile_deploys(loaded)


@pytest.mark.parametrize("preset", ["production", "slo", "pipeline"])
def test_every_preset_can_be_deployed(preset):
    deploys = profile_deploys(loader.load(preset))
    assert deploys
    for d in deploys:
        assert d.min_replicas <= d.max_replicas
        assert d.grace_seconds > d.longest_task
