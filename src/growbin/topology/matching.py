"""AMQP routing: which queues an exchange delivers a routing key to.

Topic matching follows RabbitMQ: words are separated by dots, ``*`` matches exactly one word and
``#`` matches zero or more words.
"""

from __future__ import annotations

from functools import lru_cache

from growbin.topology.model import ExchangeType, Topology


def topic_matches(pattern: str, routing_key: str) -> bool:
    """True when a topic binding ``pattern`` matches ``routing_key``."""
    return _match(_words(pattern), _words(routing_key))


def _words(key: str) -> tuple[str, ...]:
    # RabbitMQ splits an empty key into no words at all, so `*` does not match it.
    return tuple(key.split(".")) if key else ()


@lru_cache(maxsize=4096)
def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        # zero words, or consume one word and keep the '#'
        return _match(rest, words) or (bool(words) and _match(pattern, words[1:]))
    if not words:
        return False
    if head == "*" or head == words[0]:
        return _match(rest, words[1:])
    return False


def binding_matches(exchange_type: ExchangeType, binding_key: str, routing_key: str) -> bool:
    if exchange_type is ExchangeType.FANOUT:
        return True
    if exchange_type is ExchangeType.DIRECT:
        return binding_key == routing_key
    if exchange_type is ExchangeType.TOPIC:
        return topic_matches(binding_key, routing_key)
    # headers exchanges route on headers, not keys; a key alone cannot tell
    return False


def destinations(topology: Topology, exchange: str, routing_key: str) -> list[str]:
    """Queues a message published to ``exchange`` with ``routing_key`` reaches (no AE)."""
    ex = topology.exchanges.get(exchange)
    if ex is None:
        return []
    found: list[str] = []
    for qname, binding in topology.queues_bound_to(exchange):
        if qname not in found and binding_matches(ex.type, binding.routing_key, routing_key):
            found.append(qname)
    return found


def resolve(topology: Topology, exchange: str, routing_key: str) -> list[str]:
    """Queues reached, following the alternate exchange when nothing matches."""
    seen: set[str] = set()
    current: str | None = exchange
    while current is not None and current not in seen:
        seen.add(current)
        found = destinations(topology, current, routing_key)
        if found:
            return found
        ex = topology.exchanges.get(current)
        current = ex.alternate_exchange if ex else None
    return []
