"""The topology as RabbitMQ definitions JSON, for operators who deploy without growbin.

The format is the one `rabbitmqctl import_definitions` and the management API's
``POST /api/definitions`` accept. It holds the same objects that apply creates (queue
arguments and policies from :mod:`growbin.topology.declare`), and no users, permissions or
passwords: those belong to the operator's own secret store. The vhost is the topology's, set
from the broker URL (:func:`growbin.topology.vhost.bind_vhost`).
"""

from __future__ import annotations

from typing import Any

from growbin.topology.declare import (
    EXCHANGE_AUTO_DELETE,
    QUEUE_AUTO_DELETE,
    QUEUE_DURABLE,
    desired_bindings,
    desired_exchanges,
    desired_policies,
    queue_arguments,
)
from growbin.topology.model import Topology


def export_definitions(topology: Topology) -> dict[str, Any]:
    vhost = topology.vhost
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": _exchanges(topology),
        "queues": _queues(topology),
        "bindings": _bindings(topology),
        "policies": _policies(topology),
    }


def _exchanges(topology: Topology) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "vhost": topology.vhost,
            "type": exchange.type.value,
            "durable": exchange.durable,
            "auto_delete": EXCHANGE_AUTO_DELETE,
            "internal": False,
            # the alternate exchange is in the policies, so that it can change later
            "arguments": {},
        }
        for name, exchange in desired_exchanges(topology).items()
    ]


def _queues(topology: Topology) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "vhost": topology.vhost,
            "durable": QUEUE_DURABLE,
            "auto_delete": QUEUE_AUTO_DELETE,
            "arguments": queue_arguments(queue),
        }
        for name, queue in topology.queues.items()
    ]


def _bindings(topology: Topology) -> list[dict[str, Any]]:
    return [
        {
            "source": spec.exchange,
            "vhost": topology.vhost,
            "destination": spec.queue,
            "destination_type": "queue",
            "routing_key": spec.routing_key,
            "arguments": {},
        }
        for spec in desired_bindings(topology)
    ]


def _policies(topology: Topology) -> list[dict[str, Any]]:
    return [
        {
            "vhost": topology.vhost,
            "name": spec.name,
            "pattern": spec.pattern,
            "apply-to": spec.apply_to,
            "definition": spec.definition,
            "priority": spec.priority,
        }
        for spec in desired_policies(topology)
    ]
