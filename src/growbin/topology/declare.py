"""What the broker is told about each object: queue arguments, policies and bindings (pure).

RabbitMQ compares a redeclared queue's arguments with the existing queue's and refuses any
difference with 406 PRECONDITION_FAILED "inequivalent arg". Celery redeclares every queue at
every worker start, so an argument can never change once a queue exists. Hence the split:

- queue arguments carry only the fixed properties (queue type, classic priority), which cannot
  change without a new queue anyway;
- every mutable limit (TTL, max-length, overflow, dead-lettering, delivery limit) and the
  alternate exchange go into policies, which can be changed at any time without redeclaring.

The Celery app declares its queues with :func:`queue_arguments` and the ``QUEUE_*`` and
``EXCHANGE_*`` constants below, so that what it declares matches what apply created exactly.

Beyond the file's own objects, every topology has a delay exchange (:data:`DELAY_EXCHANGE`).
Celery's native delayed delivery (countdowns and retries held by RabbitMQ in its
``celery_delayed_*`` queues) hands a message back by binding each Celery queue to *the queue's
kombu exchange* with ``#.<the queue's routing key>``. Were that exchange a work exchange, the
binding would widen its routing (``#.ai.*`` on ``tasks`` takes ``external.ai.vision``, which
belongs in the unroutable queue). So each Celery queue names the delay exchange, which no
route publishes to (only the delay chain and Celery's own route-less tasks feed it), with its
own name as routing key; :func:`desired_exchanges` and
:func:`desired_bindings` list it and its bindings so that apply creates them and plan expects
exactly what a worker declares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from growbin.topology.model import Exchange, ExchangeType, Queue, QueueType, Topology

QUEUE_DURABLE = True
QUEUE_AUTO_DELETE = False
EXCHANGE_AUTO_DELETE = False
POLICY_PREFIX = "growbin."
# RabbitMQ applies only the single highest-priority policy that matches an object (policies do
# not merge), so ours sit above the usual 0-10 of hand-made policies; operator policies still
# combine with it.
POLICY_PRIORITY = 100
# The exchange only Celery's delay chain feeds (see the module docstring). A topic exchange:
# Celery takes the native delayed-delivery path only for a queue whose exchange is not direct.
DELAY_EXCHANGE = "growbin.delayed"
DELAY_EXCHANGE_TYPE = ExchangeType.TOPIC
# Celery's exchange at the end of the delay chain; it binds each delay exchange to it (kombu
# bind_queue_to_native_delayed_delivery_exchange). Celery declares it and the chain, not apply.
CELERY_DELIVERY_EXCHANGE = "celery_delayed_delivery"


@dataclass(frozen=True)
class PolicySpec:
    name: str
    pattern: str
    apply_to: str
    definition: dict[str, Any]
    priority: int = POLICY_PRIORITY
    target: str = ""  # the queue or exchange this policy exists for


@dataclass(frozen=True)
class BindingSpec:
    exchange: str
    queue: str
    routing_key: str


def seconds_to_ms(seconds: float) -> int:
    # RabbitMQ refuses a float TTL; 0 ms would mean "expire unless a consumer is waiting",
    # so a tiny positive TTL stays at least 1 ms
    return max(1, round(seconds * 1000))


def queue_arguments(queue: Queue) -> dict[str, Any]:
    """The fixed queue arguments, identical at every declaration (apply and Celery).

    A quorum queue never gets ``x-max-priority``: RabbitMQ 3.10-4.2 refuse it at declare time;
    lint reports a quorum queue with a priority.
    """
    args: dict[str, Any] = {"x-queue-type": queue.type.value}
    if queue.type is QueueType.CLASSIC and queue.priority is not None:
        args["x-max-priority"] = queue.priority
    return args


def policy_definition(queue: Queue) -> dict[str, Any]:
    """The queue's mutable limits as policy keys; unset limits are left out."""
    values: dict[str, Any] = {
        "message-ttl": None if queue.message_ttl is None else seconds_to_ms(queue.message_ttl),
        "max-length": queue.max_length,
        "max-length-bytes": queue.max_length_bytes,
        "overflow": queue.overflow.value if queue.overflow else None,
        "dead-letter-exchange": queue.dead_letter_exchange,
        "dead-letter-routing-key": queue.dead_letter_routing_key,
        "dead-letter-strategy": (
            queue.dead_letter_strategy.value if queue.dead_letter_strategy else None
        ),
        "delivery-limit": queue.delivery_limit,
    }
    return {key: value for key, value in values.items() if value is not None}


def exchange_policy_definition(exchange: Exchange) -> dict[str, Any]:
    if exchange.alternate_exchange is None:
        return {}
    return {"alternate-exchange": exchange.alternate_exchange}


def exact_pattern(name: str) -> str:
    return f"^{re.escape(name)}$"


def queue_policy_name(queue: str) -> str:
    return f"{POLICY_PREFIX}q.{queue}"


def exchange_policy_name(exchange: str) -> str:
    return f"{POLICY_PREFIX}x.{exchange}"


def queue_policy(name: str, queue: Queue) -> PolicySpec | None:
    definition = policy_definition(queue)
    if not definition:
        return None
    return PolicySpec(
        name=queue_policy_name(name),
        pattern=exact_pattern(name),
        apply_to="queues",
        definition=definition,
        target=name,
    )


def exchange_policy(name: str, exchange: Exchange) -> PolicySpec | None:
    definition = exchange_policy_definition(exchange)
    if not definition:
        return None
    return PolicySpec(
        name=exchange_policy_name(name),
        pattern=exact_pattern(name),
        apply_to="exchanges",
        definition=definition,
        target=name,
    )


def desired_policies(topology: Topology) -> list[PolicySpec]:
    """Exchange policies first, then queue policies, each in file order."""
    found = [exchange_policy(n, x) for n, x in topology.exchanges.items()]
    found += [queue_policy(n, q) for n, q in topology.queues.items()]
    return [p for p in found if p is not None]


def delay_routing_key(queue: str) -> str:
    """The routing key of a queue on the delay exchange: its own name.

    Lint (GB217) refuses two queue names whose keys one pattern would both match.
    """
    return queue


def delay_return_key(queue: str) -> str:
    """The pattern Celery binds for the way back out of the delay chain (as kombu builds it)."""
    key = delay_routing_key(queue)
    return key if key.startswith("#") else f"#.{key}"


def desired_exchanges(topology: Topology) -> dict[str, Exchange]:
    """The file's exchanges, then the delay exchange every Celery queue names."""
    return {**topology.exchanges, DELAY_EXCHANGE: Exchange(type=DELAY_EXCHANGE_TYPE)}


def delay_bindings(topology: Topology) -> list[BindingSpec]:
    """Each queue's two bindings on the delay exchange, exactly as a worker creates them.

    The plain key comes from declaring the queue with its kombu exchange (Celery also publishes
    a task with no route, such as its own ``celery.*`` tasks, this way); ``#.<key>`` from the
    native delayed-delivery step at worker start, which routes ``<28 bits>.<key>`` back.
    """
    specs: list[BindingSpec] = []
    for qname in topology.queues:
        specs.append(BindingSpec(DELAY_EXCHANGE, qname, delay_routing_key(qname)))
        specs.append(BindingSpec(DELAY_EXCHANGE, qname, delay_return_key(qname)))
    return specs


def delay_chain_bindings(topology: Topology) -> list[BindingSpec]:
    """The exchange-to-exchange bindings a worker adds from Celery's delay chain to ours.

    Their source is Celery's exchange, which apply does not create; listed for checks that
    want to name every binding touching the delay exchange (``queue`` holds the destination
    exchange here).
    """
    return [
        BindingSpec(CELERY_DELIVERY_EXCHANGE, DELAY_EXCHANGE, delay_return_key(qname))
        for qname in topology.queues
    ]


def desired_bindings(topology: Topology) -> list[BindingSpec]:
    """Every queue binding that should exist: the file's, then those on the delay exchange."""
    seen: list[BindingSpec] = []
    for qname, queue in topology.queues.items():
        for binding in queue.bindings:
            spec = BindingSpec(binding.exchange, qname, binding.routing_key)
            if spec not in seen:
                seen.append(spec)
    seen += [spec for spec in delay_bindings(topology) if spec not in seen]
    return seen
