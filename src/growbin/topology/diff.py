"""The diff between a topology and a live vhost (pure: the broker is read once, before)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from growbin.topology.broker_api import (
    BrokerApi,
    LiveBinding,
    LiveExchange,
    LivePolicy,
    LiveQueue,
)
from growbin.topology.changes import Change, ChangeKind, Plan
from growbin.topology.declare import (
    EXCHANGE_AUTO_DELETE,
    POLICY_PREFIX,
    QUEUE_AUTO_DELETE,
    QUEUE_DURABLE,
    BindingSpec,
    PolicySpec,
    delay_chain_bindings,
    desired_bindings,
    desired_exchanges,
    desired_policies,
    exchange_policy_name,
    queue_arguments,
    queue_policy_name,
)
from growbin.topology.model import Exchange, Queue, Topology

# queue arguments that are really limits: someone set them by hand instead of by policy
LIMIT_ARGUMENTS = frozenset(
    {
        "x-message-ttl",
        "x-max-length",
        "x-max-length-bytes",
        "x-overflow",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-dead-letter-strategy",
        "x-delivery-limit",
        "x-expires",
    }
)


@dataclass(frozen=True)
class LiveState:
    """What the broker has in one vhost, as far as plan cares."""

    vhost_exists: bool
    exchanges: dict[str, LiveExchange] = field(default_factory=dict)
    queues: dict[str, LiveQueue] = field(default_factory=dict)
    bindings: list[LiveBinding] = field(default_factory=list)
    policies: dict[str, LivePolicy] = field(default_factory=dict)


def read_live(api: BrokerApi, vhost: str) -> LiveState:
    if not api.vhost_exists(vhost):
        return LiveState(vhost_exists=False)
    return LiveState(
        vhost_exists=True,
        exchanges={x.name: x for x in api.list_exchanges(vhost)},
        queues={q.name: q for q in api.list_queues(vhost)},
        bindings=api.list_bindings(vhost),
        policies={p.name: p for p in api.list_policies(vhost)},
    )


def compare(topology: Topology, live: LiveState) -> Plan:
    """The plan that brings ``live`` in line with ``topology`` (pure: no I/O)."""
    changes: list[Change] = []
    if not live.vhost_exists:
        changes.append(Change(ChangeKind.CREATE, "vhost", topology.vhost))
    changes += [
        _exchange_change(n, x, live.exchanges.get(n))
        for n, x in desired_exchanges(topology).items()
    ]
    policies = desired_policies(topology)
    changes += [_policy_change(spec, live) for spec in policies]
    changes += _stale_policies(topology, live)
    changes += [_queue_change(n, q, live.queues.get(n)) for n, q in topology.queues.items()]
    wanted = desired_bindings(topology)
    changes += [_binding_change(spec, live.bindings) for spec in wanted]
    changes += _undeclared_bindings(topology, wanted, live.bindings)
    return Plan(vhost=topology.vhost, changes=changes)


# exchanges


def _exchange_change(name: str, wanted: Exchange, found: LiveExchange | None) -> Change:
    about = frozenset({name})
    if found is None:
        return Change(ChangeKind.CREATE, "exchange", name, wanted.type.value, about=about)
    differences = _differences(
        ("type", found.type, wanted.type.value),
        ("durable", found.durable, wanted.durable),
        ("auto_delete", found.auto_delete, EXCHANGE_AUTO_DELETE),
        ("internal", found.internal, False),
    )
    notes = tuple(_exchange_argument_note(name, k, v) for k, v in sorted(found.arguments.items()))
    if differences:
        return Change(
            ChangeKind.NEEDS_MIGRATION,
            "exchange",
            name,
            "; ".join(differences),
            steps=_exchange_steps(name, wanted),
            notes=notes,
            about=about,
        )
    return Change(ChangeKind.UNCHANGED, "exchange", name, notes=notes, about=about)


def _exchange_argument_note(name: str, key: str, value: Any) -> str:
    hint = (
        " (the alternate exchange belongs in the growbin policy)"
        if key == "alternate-exchange"
        else ""
    )
    return (
        f"exchange argument {key}={value!r} was set outside growbin{hint}; a declaration "
        f"without it (Celery's) fails with 406 inequivalent arg until {name} is recreated"
    )


def _exchange_steps(name: str, wanted: Exchange) -> tuple[str, ...]:
    new = f"{name}.v2"
    return (
        f"declare a new exchange {new} ({wanted.type.value}) in the topology and run apply",
        f"bind the queues to {new} and point the routes that publish to {name} at {new}",
        "deploy the publishers and workers with the new topology",
        f"delete {name} once nothing publishes to it (`rabbitmqctl delete_exchange` "
        "or the management UI); queues bound to it keep their messages",
    )


# queues


def _queue_change(name: str, wanted: Queue, found: LiveQueue | None) -> Change:
    args = queue_arguments(wanted)
    about = frozenset({name})
    if found is None:
        return Change(ChangeKind.CREATE, "queue", name, _describe_queue(args), about=about)
    differences = _queue_differences(args, found)
    notes = _queue_argument_notes(name, args, found)
    if differences:
        return Change(
            ChangeKind.NEEDS_MIGRATION,
            "queue",
            name,
            f"{'; '.join(differences)} ({_messages_kept(found)})",
            steps=_queue_steps(name, args, found),
            notes=notes,
            about=about,
        )
    return Change(ChangeKind.UNCHANGED, "queue", name, notes=notes, about=about)


def _describe_queue(args: dict[str, Any]) -> str:
    text = str(args["x-queue-type"])
    if "x-max-priority" in args:
        text += f", max priority {args['x-max-priority']}"
    return text


def _queue_differences(args: dict[str, Any], found: LiveQueue) -> list[str]:
    return _differences(
        ("type", found.type, args["x-queue-type"]),
        ("x-max-priority", found.arguments.get("x-max-priority"), args.get("x-max-priority")),
        ("durable", found.durable, QUEUE_DURABLE),
        ("auto_delete", found.auto_delete, QUEUE_AUTO_DELETE),
        ("exclusive", found.exclusive, False),
    )


def _queue_argument_notes(name: str, args: dict[str, Any], found: LiveQueue) -> tuple[str, ...]:
    notes = []
    for key, value in sorted(found.arguments.items()):
        if key in args or key in ("x-queue-type", "x-max-priority"):
            continue
        effect = (
            "it overrides the growbin policy (the lower TTL, length or delivery limit wins; "
            "for overflow and dead-letter settings the argument wins) and cannot be changed"
            if key in LIMIT_ARGUMENTS
            else "it cannot be changed"
        )
        notes.append(
            f"queue argument {key}={value!r} was set on {name} outside growbin: {effect}; "
            "a declaration without it (Celery's, at every worker start) fails with "
            "406 inequivalent arg until the queue is replaced as in a migration"
        )
    return tuple(notes)


def _messages_kept(found: LiveQueue) -> str:
    if found.messages is None:
        return "messages kept; count not reported yet"
    plural = "" if found.messages == 1 else "s"
    return f"{found.messages} message{plural} kept"


def _queue_steps(name: str, args: dict[str, Any], found: LiveQueue) -> tuple[str, ...]:
    new = f"{name}.v2"
    held = "its messages" if found.messages is None else f"its {found.messages} messages"
    return (
        f"create {new} with the new settings ({_describe_queue(args)}): rename the queue to "
        f"{new} in the topology, keep its bindings and limits, and run apply",
        f"bind it: apply adds {new}'s bindings; then remove {name}'s bindings (management UI "
        "or `rabbitmqadmin delete binding`) so new tasks go only to the new queue",
        f"move consumers: point the worker profiles that read {name} at {new} and redeploy",
        f"drain {name}: keep one worker on it until {held} are consumed, or move them "
        f"with a shovel (rabbitmq_shovel plugin) from {name} to {new}",
        _delete_step(name, found),
    )


def _delete_step(name: str, found: LiveQueue) -> str:
    if found.type == "quorum":
        # quorum queues (3.10 at least) refuse delete with if-empty or if-unused: 400 bad_request
        how = (
            f"check that {name} shows 0 messages and 0 consumers, then `rabbitmqctl "
            f"delete_queue {name}` (quorum queues refuse the --if-empty flag)"
        )
    else:
        how = f"`rabbitmqctl delete_queue {name} --if-empty`"
    return f"delete {name} only when it is empty: {how}; apply never deletes a queue"


# bindings


def binding_name(spec: BindingSpec) -> str:
    return f"{spec.exchange} -> {spec.queue} [{spec.routing_key}]"


def live_binding_name(found: LiveBinding) -> str:
    kind = "" if found.destination_type == "queue" else f" ({found.destination_type})"
    args = f" {found.arguments}" if found.arguments else ""
    return f"{found.source} -> {found.destination}{kind} [{found.routing_key}]{args}"


def _binding_change(spec: BindingSpec, live: list[LiveBinding]) -> Change:
    present = any(_same_binding(spec, b) for b in live)
    kind = ChangeKind.UNCHANGED if present else ChangeKind.BIND
    return Change(kind, "binding", binding_name(spec), about=frozenset({spec.queue}))


def _same_binding(spec: BindingSpec, found: LiveBinding) -> bool:
    return (
        found.destination_type == "queue"
        and found.source == spec.exchange
        and found.destination == spec.queue
        and found.routing_key == spec.routing_key
        and not found.arguments
    )


def _undeclared_bindings(
    topology: Topology, wanted: list[BindingSpec], live: list[LiveBinding]
) -> list[Change]:
    """Every live binding that touches our exchanges or queues and is not declared: drift.

    A binding the file does not name changes where messages go (a ``#.ai.*`` binding takes
    ``external.ai.vision`` away from the alternate exchange), so apply removes it; bindings hold
    no messages. Celery's own plumbing is not ours: the default exchange, and bindings among
    its internal objects (pidbox and reply queues, events, the native delayed-delivery chain).
    The chain's way back into the delay exchange is expected exactly as declare lists it.
    """
    ours = set(desired_exchanges(topology)) | set(topology.queues)
    chain = delay_chain_bindings(topology)
    changes = []
    for found in live:
        if found.source == "" or not ({found.source, found.destination} & ours):
            continue
        if any(_same_binding(spec, found) for spec in wanted):
            continue
        if any(_same_exchange_binding(spec, found) for spec in chain):
            continue
        changes.append(
            Change(
                ChangeKind.UNBIND,
                "binding",
                live_binding_name(found),
                "not in the topology: it changes routing; declare it in the file to keep it",
                about=frozenset({found.source, found.destination} & ours),
            )
        )
    return changes


def _same_exchange_binding(spec: BindingSpec, found: LiveBinding) -> bool:
    # in an exchange-to-exchange spec, ``queue`` holds the destination exchange
    return (
        found.destination_type == "exchange"
        and found.source == spec.exchange
        and found.destination == spec.queue
        and found.routing_key == spec.routing_key
        and not found.arguments
    )


# policies


def _policy_change(spec: PolicySpec, live: LiveState) -> Change:
    found = live.policies.get(spec.name)
    notes = _shadowing_notes(spec, live.policies.values())
    about = frozenset({spec.target})
    if found is None:
        detail = ", ".join(f"{k}={_fmt(v)}" for k, v in spec.definition.items())
        return Change(ChangeKind.CREATE, "policy", spec.name, detail, notes=notes, about=about)
    differences = _policy_differences(spec, found)
    if differences:
        return Change(
            ChangeKind.UPDATE_POLICY,
            "policy",
            spec.name,
            "; ".join(differences),
            notes=notes,
            about=about,
        )
    winner = _overriding_policy(spec, live.policies.values())
    if winner is not None:
        return Change(
            ChangeKind.OVERRIDDEN,
            "policy",
            spec.name,
            f"policy {winner.name} (priority {winner.priority}) also matches {spec.target} and "
            f"RabbitMQ applies only the highest-priority policy, so {spec.target} runs without "
            f"growbin's limits; lower {winner.name}'s priority below {spec.priority} or narrow "
            "its pattern",
            about=about,
        )
    return Change(ChangeKind.UNCHANGED, "policy", spec.name, notes=notes, about=about)


def _overriding_policy(spec: PolicySpec, live: Iterable[LivePolicy]) -> LivePolicy | None:
    rivals = [
        other
        for other in live
        if other.name != spec.name
        and other.priority > spec.priority
        and other.apply_to in ("all", spec.apply_to)
        and _pattern_matches(other, spec.target)
    ]
    return max(rivals, key=lambda p: p.priority, default=None)


def _policy_differences(spec: PolicySpec, found: LivePolicy) -> list[str]:
    keys = list(spec.definition) + [k for k in found.definition if k not in spec.definition]
    return _differences(
        *((key, found.definition.get(key), spec.definition.get(key)) for key in keys),
        ("pattern", found.pattern, spec.pattern),
        ("apply-to", found.apply_to, spec.apply_to),
        ("priority", found.priority, spec.priority),
    )


def _shadowing_notes(spec: PolicySpec, live: Iterable[LivePolicy]) -> tuple[str, ...]:
    notes = []
    for other in live:
        if other.name == spec.name or other.priority < spec.priority:
            continue
        if other.apply_to not in ("all", spec.apply_to) or not _pattern_matches(other, spec.target):
            continue
        verdict = "is ignored" if other.priority > spec.priority else "may be ignored"
        notes.append(
            f"policy {other.name} (priority {other.priority}) also matches {spec.target}: "
            f"RabbitMQ applies only the highest-priority policy, so {spec.name} {verdict}; "
            f"lower {other.name}'s priority below {spec.priority} or narrow its pattern"
        )
    return tuple(notes)


def _pattern_matches(policy: LivePolicy, name: str) -> bool:
    try:
        return re.search(policy.pattern, name) is not None
    except re.error:
        return False


def _stale_policies(topology: Topology, live: LiveState) -> list[Change]:
    wanted = {spec.name for spec in desired_policies(topology)}
    changes = []
    for name in live.policies:
        if not name.startswith(POLICY_PREFIX) or name in wanted:
            continue
        change = _stale_policy(name, topology, live)
        if change is not None:
            changes.append(change)
    return changes


def _stale_policy(name: str, topology: Topology, live: LiveState) -> Change | None:
    for prefix, declared, present, what in (
        (queue_policy_name(""), topology.queues, live.queues, "queue"),
        (exchange_policy_name(""), topology.exchanges, live.exchanges, "exchange"),
    ):
        if not name.startswith(prefix):
            continue
        target = name[len(prefix) :]
        if target in declared:
            return Change(
                ChangeKind.DELETE_POLICY,
                "policy",
                name,
                f"{what} {target} has no limits",
                about=frozenset({target}),
            )
        if target in present:
            # deleting it would lift the limits of a queue that may still be draining
            detail = (
                f"{what} {target} left the topology but still exists; the policy is kept "
                f"until {target} is deleted"
            )
            return Change(ChangeKind.EXTRA, "policy", name, detail)
        return Change(ChangeKind.DELETE_POLICY, "policy", name, f"{what} {target} is gone")
    return None


# shared


def _differences(*items: tuple[str, Any, Any]) -> list[str]:
    return [f"{key} {_fmt(old)} -> {_fmt(new)}" for key, old, new in items if old != new]


def _fmt(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
