"""A live vhost built in memory, as `topology apply` leaves it, for tests of the comparison."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from growbin.topology.broker_api import LiveBinding, LiveExchange, LivePolicy, LiveQueue
from growbin.topology.declare import (
    desired_bindings,
    desired_exchanges,
    desired_policies,
    queue_arguments,
)
from growbin.topology.diff import LiveState
from growbin.topology.model import Topology


def binding(source: str, destination: str, key: str, kind: str = "queue") -> LiveBinding:
    return LiveBinding(source, destination, kind, key, {}, "~")


def applied(topology: Topology) -> LiveState:
    return LiveState(
        vhost_exists=True,
        exchanges={
            name: LiveExchange(name, x.type.value, x.durable, False, False, {})
            for name, x in desired_exchanges(topology).items()
        },
        queues={
            name: LiveQueue(name, q.type.value, True, False, False, queue_arguments(q))
            for name, q in topology.queues.items()
        },
        bindings=[binding(s.exchange, s.queue, s.routing_key) for s in desired_bindings(topology)],
        policies={
            p.name: LivePolicy(p.name, p.pattern, p.apply_to, p.priority, p.definition)
            for p in desired_policies(topology)
        },
    )


def with_bindings(live: LiveState, *extra: LiveBinding) -> LiveState:
    return replace(live, bindings=[*live.bindings, *extra])


def without_policy(live: LiveState, name: str) -> LiveState:
    return replace(live, policies={n: p for n, p in live.policies.items() if n != name})


@dataclass
class FakeBrokerApi:
    """Answers the reads of :func:`growbin.topology.diff.read_live` from a LiveState."""

    live: LiveState
    vhosts: list[str] = field(default_factory=list)

    def vhost_exists(self, vhost: str) -> bool:
        self.vhosts.append(vhost)
        return self.live.vhost_exists

    def list_exchanges(self, vhost: str) -> list[LiveExchange]:
        return list(self.live.exchanges.values())

    def list_queues(self, vhost: str) -> list[LiveQueue]:
        return list(self.live.queues.values())

    def list_bindings(self, vhost: str) -> list[LiveBinding]:
        return list(self.live.bindings)

    def list_policies(self, vhost: str) -> list[LivePolicy]:
        return list(self.live.policies.values())
