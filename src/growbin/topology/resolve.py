"""Everything the runtime needs to know about one task name, resolved from the topology."""

from __future__ import annotations

from dataclasses import dataclass

from growbin.topology.matching import destinations
from growbin.topology.model import RetryPolicy, Topology

NO_RETRY = RetryPolicy(max_retries=0)


@dataclass(frozen=True)
class ResolvedRoute:
    task: str
    exchange: str
    routing_key: str
    priority: int | None
    queue: str | None  # None when the key reaches no queue or several (lint reports both)
    retry: RetryPolicy
    time_limit: float | None
    soft_time_limit: float | None
    dead_letter_exchange: str | None
    dead_letter_routing_key: str | None


def resolve_route(topology: Topology, task: str) -> ResolvedRoute | None:
    """The route, queue, retry policy, time limits and dead-letter target of ``task``.

    The route's own retry policy and time limits win; otherwise those of the first profile
    consuming the queue.
    """
    found = topology.route_for(task)
    if found is None:
        return None
    _, route = found
    reached = destinations(topology, route.exchange, route.routing_key)
    queue_name = reached[0] if len(reached) == 1 else None
    queue = topology.queues.get(queue_name) if queue_name else None
    consumers = topology.profiles_consuming(queue_name) if queue_name else []
    profile = topology.profiles[consumers[0]] if consumers else None
    retry = route.retry or (profile.retry if profile else NO_RETRY)
    dlx = queue.dead_letter_exchange if queue else None
    return ResolvedRoute(
        task=task,
        exchange=route.exchange,
        routing_key=route.routing_key,
        priority=route.priority,
        queue=queue_name,
        retry=retry,
        time_limit=route.time_limit or (profile.time_limit if profile else None),
        soft_time_limit=route.soft_time_limit or (profile.soft_time_limit if profile else None),
        dead_letter_exchange=dlx,
        dead_letter_routing_key=(
            (queue.dead_letter_routing_key or route.routing_key) if queue and dlx else None
        ),
    )
