import pytest

from growbin.topology import loader
from growbin.topology.matching import destinations, resolve, topic_matches
from growbin.topology.model import ExchangeType


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("ai.*", "ai.analyze", True),
        ("ai.*", "ai.map.search", False),
        ("ai.*", "ai", False),
        ("*.high.*", "waste.high.save", True),
        ("*.high.*", "high.save", False),
    ],
)
def test_star_matches_exactly_one_word(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("api.#", "api", True),
        ("api.#", "api.oauth", True),
        ("api.#", "api.map.search", True),
        ("api.#", "apis.map", False),
        ("#", "anything.at.all", True),
        ("#.search", "search", True),
        ("#.search", "api.map.search", True),
        ("#.search", "api.map", False),
    ],
)
def test_hash_matches_zero_or_more_words(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [("a.b", True), ("a.x.b", True), ("a.x.y.b", True), ("a.x", False), ("b.a.b", False)],
)
def test_hash_between_words_matches_any_run_of_words_including_none(key, expected):
    assert topic_matches("a.#.b", key) is expected


def test_an_empty_routing_key_is_matched_by_hash_and_by_an_empty_binding_only():
    assert topic_matches("#", "")
    assert topic_matches("", "")
    assert not topic_matches("", "a")
    assert not topic_matches("a", "")


def test_star_does_not_match_an_empty_routing_key():
    # RabbitMQ's topic trie splits <<>> into zero words, so '*' (exactly one word) cannot match
    assert not topic_matches("*", "")
    assert not topic_matches("*.#", "")


def test_direct_and_fanout_exchanges_route_as_rabbitmq_does():
    text = """\
name: t
exchanges:
  direct: {type: direct}
  fan: {type: fanout}
queues:
  q.a:
    bindings: [{exchange: direct, routing_key: "a.*"}, {exchange: fan, routing_key: x}]
  q.b:
    bindings: [{exchange: direct, routing_key: b}]
"""
    t = loader.parse(text, source="t.yaml").topology
    assert t.exchanges["direct"].type is ExchangeType.DIRECT
    assert destinations(t, "direct", "a.*") == ["q.a"]
    assert destinations(t, "direct", "a.x") == []
    assert destinations(t, "fan", "whatever") == ["q.a"]
    assert destinations(t, "nope", "b") == []


def test_resolve_follows_the_alternate_exchange_only_when_nothing_matches():
    text = """\
name: t
exchanges:
  tasks: {type: topic, alternate_exchange: unroutable}
  unroutable: {type: fanout}
queues:
  q.a:
    bindings: [{exchange: tasks, routing_key: "a.#"}]
  q.unroutable:
    role: unroutable
    bindings: [{exchange: unroutable}]
"""
    t = loader.parse(text, source="t.yaml").topology
    assert resolve(t, "tasks", "a.b") == ["q.a"]
    assert destinations(t, "tasks", "b.c") == []
    assert resolve(t, "tasks", "b.c") == ["q.unroutable"]
