"""What a worker profile needs wherever it is deployed: its commands, grace, size and scaling.

The Kubernetes and compose renderers read these figures from here, so both deploy a profile
the same way and both follow the topology when it changes.

- **Grace**: a worker told to stop (SIGTERM) finishes the tasks it holds, then syncs its
  journal to PostgreSQL. It must get longer than its longest task may run (the profile's
  ``time_limit``, or a route's own when longer) plus that final sync.
- **Scaling**: a profile keeps at least its ``replicas`` and scales on the depth of its queues
  up to ``MAX_REPLICA_FACTOR`` times that. The per-replica target is chosen so that the last
  replica is added when the queue reaches its ``alert_depth``: the alert fires only once
  scaling out has been exhausted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from growbin.errors import TopologyError
from growbin.topology.loader import LoadedTopology
from growbin.topology.matching import destinations
from growbin.topology.model import Pool, Topology, WorkerProfile

# Seconds a stopping worker needs after its last task: the journal's final sync
# (growbin.journal.maintenance.FINAL_SYNC_SECONDS, 10 s) and closing the pool and connections.
SHUTDOWN_MARGIN = 30
# A profile without a time limit is given this much for its last task (the stall detector
# assumes the same: 600 s plus its 60 s margin).
NO_LIMIT_SECONDS = 600.0
MAX_REPLICA_FACTOR = 4
# Per replica, when a queue has neither alert_depth nor max_length: ten tasks per pool slot.
TASKS_PER_SLOT = 10

METRICS_PORT = 9090
JOURNAL_DIR = "/var/lib/growbin/journal"
IMAGE_DIR = "/var/lib/growbin/images"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class ScaleTrigger:
    """Scale on one queue: ``per_replica`` waiting messages make one more replica."""

    queue: str
    per_replica: int
    basis: str


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class ProfileDeploy:
    name: str
    profile: WorkerProfile
    longest_task: float
    grace_seconds: int
    min_replicas: int
    max_replicas: int
    triggers: tuple[ScaleTrigger, ...]
    resources: Resources

    @property
    def service(self) -> str:
        """The name of the compose service and of the Kubernetes Deployment."""
        return f"worker-{self.name}"

    def command(self) -> list[str]:
        return ["growbin", "worker", "--profile", self.name]

    def probe(self) -> list[str]:
        """Exit 0 when this container's worker is connected, consuming and not stalled."""
        return ["growbin", "worker", "probe", "--profile", self.name]


def longest_task(topology: Topology, name: str) -> float:
    """The longest a task on this profile's queues may run: its limit or a route's own."""
    profile = topology.profiles[name]
    limits = [profile.time_limit] if profile.time_limit is not None else []
    for route in topology.routes.values():
        if route.time_limit is None:
            continue
        if set(destinations(topology, route.exchange, route.routing_key)) & set(profile.queues):
            limits.append(route.time_limit)
    return max(limits) if limits else NO_LIMIT_SECONDS


def _trigger(topology: Topology, queue: str, profile: WorkerProfile, most: int) -> ScaleTrigger:
    spec = topology.queues.get(queue)
    if spec is not None and spec.alert_depth is not None:
        depth, basis = spec.alert_depth, f"alert_depth {spec.alert_depth}"
    elif spec is not None and spec.max_length is not None:
        depth, basis = spec.max_length // 2, f"half of max_length {spec.max_length}"
    else:
        per = profile.concurrency * TASKS_PER_SLOT
        return ScaleTrigger(queue, per, f"{TASKS_PER_SLOT} per pool slot (no depth in topology)")
    return ScaleTrigger(queue, max(1, math.ceil(depth / most)), f"{basis} / {most} replicas")


def _resources(profile: WorkerProfile) -> Resources:
    n = profile.concurrency
    if profile.pool is Pool.PREFORK:
        # one process per slot: CPU and memory grow with each child
        cpu, memory = 250 * n, 128 + 128 * n
    elif profile.pool is Pool.SOLO:
        cpu, memory = 250, 256
    else:
        # threads, gevent, eventlet: one process; slots mostly wait on the network
        cpu, memory = 250 + 50 * n, 256 + 16 * n
    return Resources(
        cpu_request=f"{cpu}m",
        cpu_limit=f"{cpu * 4}m",
        memory_request=f"{memory}Mi",
        memory_limit=f"{memory * 2}Mi",
    )


def profile_deploys(loaded: LoadedTopology) -> list[ProfileDeploy]:
    """Every profile of the topology, in file order, with what its deployment needs."""
    topology = loaded.topology
    found = []
    for name, profile in topology.profiles.items():
        if not _DNS_LABEL.fullmatch(name) or len(name) > 40:
            raise TopologyError(
                f"profile {name!r} cannot name a container or a Kubernetes object: use lower "
                "case letters, digits and '-', at most 40 characters (e.g. 'image-upload')",
                loaded.location("profiles", name),
            )
        longest = longest_task(topology, name)
        most = profile.replicas * MAX_REPLICA_FACTOR
        found.append(
            ProfileDeploy(
                name=name,
                profile=profile,
                longest_task=longest,
                grace_seconds=math.ceil(longest) + SHUTDOWN_MARGIN,
                min_replicas=profile.replicas,
                max_replicas=most,
                triggers=tuple(_trigger(topology, q, profile, most) for q in profile.queues),
                resources=_resources(profile),
            )
        )
    return found
