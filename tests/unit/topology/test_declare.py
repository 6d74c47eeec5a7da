import re

import pytest

from growbin.topology import loader
from growbin.topology.declare import (
    DELAY_EXCHANGE,
    POLICY_PRIORITY,
    BindingSpec,
    delay_chain_bindings,
    delay_return_key,
    delay_routing_key,
    desired_bindings,
    desired_exchanges,
    desired_policies,
    exchange_policy,
    exchange_policy_definition,
    policy_definition,
    queue_arguments,
    queue_policy,
    seconds_to_ms,
)
from growbin.topology.model import (
    Binding,
    DeadLetterStrategy,
    Exchange,
    ExchangeType,
    Overflow,
    Queue,
    QueueType,
    Topology,
)


def test_a_quorum_queue_declares_only_its_type():
    assert queue_arguments(Queue(type=QueueType.QUORUM, message_ttl=60, max_length=5)) == {
        "x-queue-type": "quorum"
    }


def test_a_classic_queue_with_a_priority_declares_x_max_priority():
    assert queue_arguments(Queue(type=QueueType.CLASSIC, priority=10)) == {
        "x-queue-type": "classic",
        "x-max-priority": 10,
    }


def test_a_quorum_queue_never_declares_x_max_priority_because_rabbitmq_refuses_it():
    assert "x-max-priority" not in queue_arguments(Queue(type=QueueType.QUORUM, priority=10))


def test_limits_never_become_queue_arguments():
    queue = Queue(
        message_ttl=1,
        max_length=1,
        max_length_bytes=1,
        overflow=Overflow.REJECT_PUBLISH,
        dead_letter_exchange="dlx",
        delivery_limit=1,
    )
    assert set(queue_arguments(queue)) == {"x-queue-type"}


def test_every_limit_becomes_a_policy_key_with_the_ttl_in_milliseconds():
    queue = Queue(
        type=QueueType.QUORUM,
        message_ttl=300,
        max_length=5000,
        max_length_bytes=1_000_000,
        overflow=Overflow.REJECT_PUBLISH,
        dead_letter_exchange="dlx",
        dead_letter_routing_key="dlq",
        dead_letter_strategy=DeadLetterStrategy.AT_LEAST_ONCE,
        delivery_limit=5,
    )
    assert policy_definition(queue) == {
        "message-ttl": 300000,
        "max-length": 5000,
        "max-length-bytes": 1_000_000,
        "overflow": "reject-publish",
        "dead-letter-exchange": "dlx",
        "dead-letter-routing-key": "dlq",
        "dead-letter-strategy": "at-least-once",
        "delivery-limit": 5,
    }


def test_unset_limits_are_left_out_of_the_policy():
    assert policy_definition(Queue(max_length=10)) == {"max-length": 10}


def test_a_max_length_of_zero_is_kept_because_it_is_a_real_limit():
    assert policy_definition(Queue(max_length=0)) == {"max-length": 0}


@pytest.mark.parametrize(("seconds", "ms"), [(300, 300000), (1.5, 1500), (0.0004, 1), (0.0016, 2)])
def test_ttl_becomes_whole_milliseconds_and_never_zero(seconds, ms):
    assert seconds_to_ms(seconds) == ms
    assert isinstance(seconds_to_ms(seconds), int)


def test_a_queue_without_limits_has_no_policy():
    assert queue_policy("q.plain", Queue()) is None


def test_a_queue_policy_is_named_after_the_queue_and_matches_only_it():
    spec = queue_policy("q.ai", Queue(max_length=1))
    assert spec is not None
    assert spec.name == "growbin.q.q.ai"
    assert spec.apply_to == "queues"
    assert spec.priority == POLICY_PRIORITY == 100
    assert re.search(spec.pattern, "q.ai")
    for other in ("qxai", "q.ai.v2", "old.q.ai", "q.a"):
        assert not re.search(spec.pattern, other)


def test_the_alternate_exchange_becomes_an_exchange_policy():
    exchange = Exchange(type=ExchangeType.TOPIC, alternate_exchange="unroutable")
    assert exchange_policy_definition(exchange) == {"alternate-exchange": "unroutable"}
    spec = exchange_policy("tasks", exchange)
    assert spec is not None
    assert (spec.name, spec.pattern, spec.apply_to) == ("growbin.x.tasks", "^tasks$", "exchanges")


def test_an_exchange_without_alternate_exchange_has_no_policy():
    assert exchange_policy("dlx", Exchange(type=ExchangeType.DIRECT)) is None


def test_the_production_preset_gives_q_ai_its_limits_as_a_policy():
    topology = loader.load("production").topology
    by_name = {p.name: p for p in desired_policies(topology)}
    assert by_name["growbin.q.q.ai"].definition == {
        "message-ttl": 300000,
        "max-length": 5000,
        "overflow": "reject-publish",
        "dead-letter-exchange": "dlx",
        "dead-letter-routing-key": "dlq",
        "dead-letter-strategy": "at-least-once",
        "delivery-limit": 5,
    }
    assert by_name["growbin.x.tasks"].definition == {"alternate-exchange": "unroutable"}


@pytest.mark.parametrize("preset", loader.PRESETS)
def test_every_preset_policy_has_a_unique_name_and_targets_a_declared_object(preset):
    topology = loader.load(preset).topology
    policies = desired_policies(topology)
    assert len({p.name for p in policies}) == len(policies)
    for spec in policies:
        declared = topology.queues if spec.apply_to == "queues" else topology.exchanges
        assert spec.target in declared


def test_a_binding_listed_twice_is_declared_once():
    topology = Topology(
        name="t",
        exchanges={"tasks": Exchange(type=ExchangeType.TOPIC)},
        queues={
            "q.a": Queue(
                bindings=[
                    Binding(exchange="tasks", routing_key="a.#"),
                    Binding(exchange="tasks", routing_key="a.#"),
                    Binding(exchange="tasks", routing_key="b.#"),
                ]
            )
        },
    )
    assert desired_bindings(topology)[:2] == [
        BindingSpec("tasks", "q.a", "a.#"),
        BindingSpec("tasks", "q.a", "b.#"),
    ]
    assert len(desired_bindings(topology)) == 4  # and the two on the delay exchange


def test_every_queue_gets_exactly_the_two_delay_bindings_a_worker_creates():
    topology = loader.load("production").topology
    on_delay = [b for b in desired_bindings(topology) if b.exchange == DELAY_EXCHANGE]
    assert on_delay == [
        BindingSpec(DELAY_EXCHANGE, name, key)
        for name in topology.queues
        for key in (name, f"#.{name}")
    ]


def test_no_desired_binding_on_a_work_exchange_is_outside_the_file():
    topology = loader.load("production").topology
    files = {
        BindingSpec(b.exchange, name, b.routing_key)
        for name, queue in topology.queues.items()
        for b in queue.bindings
    }
    on_file_exchanges = {b for b in desired_bindings(topology) if b.exchange != DELAY_EXCHANGE}
    assert on_file_exchanges == files


def test_the_delay_exchange_is_a_durable_topic_exchange_next_to_the_files():
    topology = loader.load("production").topology
    exchanges = desired_exchanges(topology)
    assert list(exchanges) == [*topology.exchanges, DELAY_EXCHANGE]
    assert exchanges[DELAY_EXCHANGE].type is ExchangeType.TOPIC
    assert exchanges[DELAY_EXCHANGE].durable
    assert exchanges[DELAY_EXCHANGE].alternate_exchange is None


def test_celerys_delay_chain_binds_its_exit_to_the_delay_exchange_once_per_queue():
    topology = loader.load("production").topology
    assert delay_chain_bindings(topology) == [
        BindingSpec("celery_delayed_delivery", DELAY_EXCHANGE, f"#.{name}")
        for name in topology.queues
    ]


def test_the_return_key_is_built_the_way_kombu_builds_it():
    assert delay_routing_key("q.ai") == "q.ai"
    assert delay_return_key("q.ai") == "#.q.ai"
    assert delay_return_key("#odd") == "#odd"  # kombu keeps a key that starts with '#'
