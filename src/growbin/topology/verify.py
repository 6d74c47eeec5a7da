"""Verify before consuming: workers, beat and the API start only where the topology is in force.

A worker that declares its queues on a vhost nobody applied gets queues with only their fixed
arguments: no TTL, no length limit, no dead-lettering, no delivery limit, no alternate
exchange. Everything would seem to work while the guarantees are gone. So each process compares
the live vhost with the topology before it consumes or publishes (the same comparison as
``growbin topology plan``), limited to what it depends on, and refuses to start on a
difference, printing the differences and the fix.

What a process depends on: the queues it consumes (a worker) or publishes to (beat, the API);
for each, its policy, its bindings, the exchanges it is bound to, its dead-letter exchange and
everything that exchange delivers to, and the alternate exchange of every exchange involved
(with its queues). A binding the file does not declare on any of those is a difference too.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from kombu import Connection

from growbin.errors import GrowbinError, ServiceUnavailableError
from growbin.settings import Settings, mask_url
from growbin.topology.broker_api import BrokerApi
from growbin.topology.changes import Change, ChangeKind
from growbin.topology.declare import desired_bindings, desired_exchanges
from growbin.topology.diff import compare, read_live
from growbin.topology.matching import destinations
from growbin.topology.model import Topology

log = logging.getLogger(__name__)

SKIP_VARIABLE = "GROWBIN_SKIP_TOPOLOGY_CHECK"
APPLY_HINT = "run `growbin topology apply`"
SHOWN = 40  # differences listed in a refusal; `growbin topology plan` shows all
MANUAL_KINDS = frozenset({ChangeKind.NEEDS_MIGRATION, ChangeKind.OVERRIDDEN})


class TopologyDriftError(GrowbinError):
    """The live vhost differs from the topology in something a process depends on."""

    def __init__(self, message: str, changes: list[Change]) -> None:
        self.changes = changes
        super().__init__(message)


def objects_in_use(topology: Topology, queues: Iterable[str]) -> frozenset[str]:
    """The queues and exchanges that consuming from or publishing to ``queues`` relies on.

    An exchange that dead-letters or takes unroutable messages counts with every queue it
    delivers to; an exchange a queue is merely bound to counts alone.
    """
    exchanges = desired_exchanges(topology)
    bound: dict[str, set[str]] = {}
    for spec in desired_bindings(topology):
        bound.setdefault(spec.queue, set()).add(spec.exchange)
    used_queues: set[str] = set()
    used_exchanges: set[str] = set()
    queue_todo = list(queues)
    exchange_todo: list[str] = []

    def sink(exchange: str) -> None:
        exchange_todo.append(exchange)
        queue_todo.extend(q for q, _ in topology.queues_bound_to(exchange))

    while queue_todo or exchange_todo:
        if queue_todo:
            name = queue_todo.pop()
            if name in used_queues or name not in topology.queues:
                continue
            used_queues.add(name)
            exchange_todo.extend(sorted(bound.get(name, ())))
            dead_letter_exchange = topology.queues[name].dead_letter_exchange
            if dead_letter_exchange:
                sink(dead_letter_exchange)
        else:
            name = exchange_todo.pop()
            if name in used_exchanges or name not in exchanges:
                continue
            used_exchanges.add(name)
            alternate = exchanges[name].alternate_exchange
            if alternate:
                sink(alternate)
    return frozenset(used_queues | used_exchanges)


def published_queues(topology: Topology, tasks: Iterable[str] | None = None) -> set[str]:
    """The queues the routes of ``tasks`` (default: every route) deliver to."""
    queues: set[str] = set()
    for task in topology.routes if tasks is None else tasks:
        found = topology.route_for(task)
        if found is not None:
            queues.update(destinations(topology, found[1].exchange, found[1].routing_key))
    return queues


def drift(
    topology: Topology, api: BrokerApi, queues: Collection[str] | None = None
) -> list[Change]:
    """The differences between the live vhost and the topology that matter for ``queues``.

    ``None`` means the whole topology (the API and ``/readyz``).
    """
    plan = compare(topology, read_live(api, topology.vhost))
    scope = None if queues is None else objects_in_use(topology, queues)
    return [
        c
        for c in plan.drift
        if scope is None or c.object_type == "vhost" or not c.about or c.about & scope
    ]


def describe(topology: Topology, changes: list[Change], who: str) -> str:
    lines = [line for change in changes[:SHOWN] for line in change.render()]
    if len(changes) > SHOWN:
        lines.append(f"... and {len(changes) - SHOWN} more (`growbin topology plan` shows all)")
    manual = [c for c in changes if c.kind in MANUAL_KINDS]
    extra = (
        "; changes marked ! need a person first (follow the steps `growbin topology plan` prints)"
        if manual
        else ""
    )
    return (
        f"{who} refuses to start: vhost {topology.vhost!r} differs from topology "
        f"{topology.name!r} in {len(changes)} thing(s) it depends on:\n  "
        + "\n  ".join(lines)
        + f"\nFix: {APPLY_HINT} with the same GROWBIN_BROKER_URL and GROWBIN_TOPOLOGY, then "
        f"start it again{extra}. (Development only: {SKIP_VARIABLE}=true skips this check.)"
    )


def verify_before_start(
    settings: Settings,
    topology: Topology,
    *,
    queues: Collection[str] | None,
    who: str,
) -> None:
    """Refuse (raise) unless the live vhost matches what ``who`` depends on."""
    if settings.skip_topology_check:
        log.warning(
            "%s: the topology check is skipped (%s); vhost %r was not compared with topology %r",
            who,
            SKIP_VARIABLE,
            topology.vhost,
            topology.name,
        )
        return
    api_url = settings.rabbitmq_api_url.get_secret_value()
    try:
        with BrokerApi(api_url, timeout=settings.broker_connect_timeout) as api:
            changes = drift(topology, api, queues)
    except ServiceUnavailableError as exc:
        raise unreachable(settings, exc, who, timeout=settings.broker_connect_timeout) from None
    if changes:
        raise TopologyDriftError(describe(topology, changes, who), changes)
    log.info("%s: vhost %r matches topology %r", who, topology.vhost, topology.name)


def broker_reachable(broker_url: str, timeout: float) -> bool:
    try:
        with Connection(broker_url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=0, timeout=timeout)
    except Exception:  # any failure means "not reachable" here
        return False
    return True


def unreachable(
    settings: Settings, error: ServiceUnavailableError, who: str, *, timeout: float
) -> ServiceUnavailableError:
    """Name the right service: RabbitMQ itself when it is down, else its management API.

    A management API that does not answer while AMQP does is a missing plugin or a wrong
    GROWBIN_RABBITMQ_API_URL; when AMQP is silent too, the broker is down and advice about
    the plugin would send the operator the wrong way.
    """
    broker_url = settings.broker_url.get_secret_value()
    if not broker_reachable(broker_url, timeout):
        return ServiceUnavailableError(
            "RabbitMQ",
            mask_url(broker_url),
            f"neither AMQP nor the management API ({error.url}) answers, so {who} cannot "
            "compare the vhost with the topology",
            fix="start RabbitMQ (or wait until it is up) and check GROWBIN_BROKER_URL",
        )
    return ServiceUnavailableError(
        error.service,
        error.url,
        f"RabbitMQ answers on AMQP but not its management API, which {who} needs to compare "
        "the vhost with the topology",
        fix="enable it with `rabbitmq-plugins enable rabbitmq_management` and check "
        "GROWBIN_RABBITMQ_API_URL",
    )
