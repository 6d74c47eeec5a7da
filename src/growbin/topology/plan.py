"""Plan and apply: bring a live RabbitMQ vhost in line with the topology, showing the diff first.

Like a database migration, apply creates missing objects, adds missing bindings and sets
policies. It never deletes or recreates a queue or an exchange, because that loses messages; an
immutable difference (queue type, classic priority, durability, exchange type) is reported as
NEEDS_MIGRATION with the manual steps, and apply refuses to run until it is done. What it does
remove: a binding on our exchanges or queues that the topology does not declare (it changes
routing and holds no message), and a growbin policy whose object has no limits any more. Other
live objects the topology does not mention are left alone.

The vhost is the topology's, which :func:`growbin.topology.vhost.bind_vhost` set from the
broker URL.
"""

from __future__ import annotations

from growbin.errors import GrowbinError, MigrationRequiredError
from growbin.topology.broker_api import BrokerApi, LiveBinding
from growbin.topology.changes import APPLIED_KINDS, Change, ChangeKind, Plan
from growbin.topology.declare import (
    EXCHANGE_AUTO_DELETE,
    QUEUE_AUTO_DELETE,
    QUEUE_DURABLE,
    BindingSpec,
    PolicySpec,
    desired_bindings,
    desired_exchanges,
    desired_policies,
    queue_arguments,
)
from growbin.topology.diff import (
    LiveState,
    binding_name,
    compare,
    live_binding_name,
    read_live,
)
from growbin.topology.model import Topology

__all__ = ["Change", "ChangeKind", "LiveState", "Plan", "apply", "compare", "plan", "read_live"]


def plan(topology: Topology, api: BrokerApi) -> Plan:
    return compare(topology, read_live(api, topology.vhost))


# apply


def apply(topology: Topology, api: BrokerApi, *, allow_partial: bool = False) -> Plan:
    """Apply the plan and return it; refuses when a migration is needed unless allow_partial."""
    live = read_live(api, topology.vhost)
    current = compare(topology, live)
    if current.needs_migration and not allow_partial:
        raise MigrationRequiredError(_migration_message(current))
    policies = {spec.name: spec for spec in desired_policies(topology)}
    bindings = {binding_name(spec): spec for spec in desired_bindings(topology)}
    undeclared: dict[str, list[LiveBinding]] = {}
    for found in live.bindings:
        undeclared.setdefault(live_binding_name(found), []).append(found)
    for change in current:
        if change.kind is ChangeKind.UNBIND:
            for found in undeclared.get(change.name, []):
                api.delete_binding(topology.vhost, found)
        elif change.kind in APPLIED_KINDS:
            _execute(change, topology, api, policies, bindings)
    _check_converged(plan(topology, api))
    return current


def _execute(
    change: Change,
    topology: Topology,
    api: BrokerApi,
    policies: dict[str, PolicySpec],
    bindings: dict[str, BindingSpec],
) -> None:
    vhost = topology.vhost
    if change.object_type == "vhost":
        api.put_vhost(vhost, description=f"growbin topology {topology.name}")
    elif change.object_type == "exchange":
        exchange = desired_exchanges(topology)[change.name]
        api.put_exchange(
            vhost,
            change.name,
            exchange.type.value,
            durable=exchange.durable,
            auto_delete=EXCHANGE_AUTO_DELETE,
        )
    elif change.object_type == "queue":
        args = queue_arguments(topology.queues[change.name])
        api.put_queue(
            vhost, change.name, arguments=args, durable=QUEUE_DURABLE, auto_delete=QUEUE_AUTO_DELETE
        )
    elif change.object_type == "binding":
        spec = bindings[change.name]
        api.put_binding(vhost, spec.exchange, spec.queue, spec.routing_key)
    elif change.kind is ChangeKind.DELETE_POLICY:
        api.delete_policy(vhost, change.name, missing_ok=True)
    else:
        policy = policies[change.name]
        api.put_policy(
            vhost,
            policy.name,
            pattern=policy.pattern,
            definition=policy.definition,
            apply_to=policy.apply_to,
            priority=policy.priority,
        )


def _migration_message(current: Plan) -> str:
    lines = [line for change in current.migrations for line in change.render()]
    return (
        f"the topology cannot be applied to vhost {current.vhost} without a manual migration; "
        "nothing was changed:\n"
        + "\n".join(lines)
        + "\nFix: follow the steps above, or apply everything else now with allow_partial "
        "(`--allow-partial`) and migrate later."
    )


def _check_converged(after: Plan) -> None:
    # a concurrent writer (another apply, an operator) can undo a change between two requests
    leftover = [c for c in after if c.kind in APPLIED_KINDS]
    if leftover:
        lines = "\n".join(line for c in leftover for line in c.render())
        raise GrowbinError(
            f"apply finished but vhost {after.vhost} still differs from the topology:\n{lines}\n"
            "Fix: check whether another process changes the broker, then run apply again."
        )
