import time

import pytest

from growbin.errors import MigrationRequiredError, ServiceUnavailableError
from growbin.topology import loader
from growbin.topology.broker_api import BrokerApi
from growbin.topology.declare import delay_chain_bindings, policy_definition, queue_arguments
from growbin.topology.export import export_definitions
from growbin.topology.model import QueueType
from growbin.topology.plan import ChangeKind, apply, plan

pytestmark = pytest.mark.integration

# the management API refreshes queue statistics and policy fields every 5 s by default
STATS_WAIT = 8.0


@pytest.fixture
def topology(temp_vhost):
    return loader.load("production").topology.model_copy(update={"vhost": temp_vhost})


def with_queue(topology, name, **changes):
    queues = dict(topology.queues)
    queues[name] = queues[name].model_copy(update=changes)
    return topology.model_copy(update={"queues": queues})


def wait_for(probe, timeout=STATS_WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def effective_policy(api, vhost, queue, expected):
    def probe():
        live = api.get_queue(vhost, queue)
        return live if live and live.effective_policy_definition == expected else None

    return wait_for(probe)


def change(result, object_type, name):
    return next(c for c in result if c.object_type == object_type and c.name == name)


def test_apply_on_an_empty_vhost_creates_everything(broker_api, topology):
    vhost = topology.vhost
    result = apply(topology, broker_api)

    assert "+ create queue q.ai (quorum)" in result.render()
    assert "+ create policy growbin.x.tasks (alternate-exchange=unroutable)" in result.render()
    for name, queue in topology.queues.items():
        live = broker_api.get_queue(vhost, name)
        assert live is not None
        assert live.type == queue.type.value
        assert live.arguments == queue_arguments(queue)
        assert (live.durable, live.auto_delete, live.exclusive) == (True, False, False)
    for name, exchange in topology.exchanges.items():
        live_exchange = broker_api.get_exchange(vhost, name)
        assert live_exchange is not None
        assert live_exchange.type == exchange.type.value
    bindings = {(b.source, b.destination, b.routing_key) for b in broker_api.list_bindings(vhost)}
    assert ("tasks", "q.ai", "ai.*") in bindings
    assert ("unroutable", "q.unroutable", "") in bindings

    # the first statistics of a new quorum queue take ~10 s on 3.10, a classic queue's <= 5 s
    q_dlq = topology.queues["q.dlq"]
    live = effective_policy(broker_api, vhost, "q.dlq", policy_definition(q_dlq))
    assert live is not None, "the policy did not become effective on q.dlq"
    assert live.policy == "growbin.q.q.dlq"
    policy = broker_api.get_policy(vhost, "growbin.q.q.ai")
    assert policy is not None
    assert policy.definition == policy_definition(topology.queues["q.ai"])


def test_apply_creates_a_missing_vhost(broker_api, vhost_name):
    topology = loader.load("slo").topology.model_copy(update={"vhost": vhost_name})
    result = apply(topology, broker_api)

    assert result.changes[0].kind is ChangeKind.CREATE
    assert result.changes[0].object_type == "vhost"
    assert broker_api.vhost_exists(vhost_name)
    live = broker_api.get_queue(vhost_name, "q.fast")
    assert live is not None
    assert live.arguments == {"x-queue-type": "classic", "x-max-priority": 10}


def test_a_second_apply_reports_only_unchanged(broker_api, topology):
    apply(topology, broker_api)
    again = apply(topology, broker_api)

    assert {c.kind for c in again} == {ChangeKind.UNCHANGED}
    assert not again.has_changes
    assert not again.needs_migration
    assert all(line.startswith("= ") for line in again.render())
    assert again.to_dict()["has_changes"] is False


def test_changing_a_queue_limit_updates_its_policy_and_apply_makes_it_effective(
    broker_api, topology
):
    vhost = topology.vhost
    apply(topology, broker_api)
    changed = with_queue(topology, "q.ai", message_ttl=0.05)
    changed = with_queue(changed, "q.dlq", max_length=1)

    result = plan(changed, broker_api)
    assert change(result, "policy", "growbin.q.q.ai").render() == [
        "~ policy growbin.q.q.ai: message-ttl 300000 -> 50"
    ]
    assert change(result, "policy", "growbin.q.q.dlq").render() == [
        "~ policy growbin.q.q.dlq: max-length 10000 -> 1"
    ]

    apply(changed, broker_api)
    # effective at once: q.ai's message expires and is dead-lettered through dlx into q.dlq
    assert broker_api.publish(vhost, "tasks", "ai.analyze", "expires")
    dead = wait_for(lambda: broker_api.get_messages(vhost, "q.dlq"), timeout=3)
    assert dead and dead[0]["payload"] == "expires"
    assert dead[0]["properties"]["headers"]["x-death"][0]["reason"] == "expired"
    # and q.dlq keeps only the newest message (max-length 1, drop-head)
    assert broker_api.publish(vhost, "", "q.dlq", "newest")
    assert [m["payload"] for m in broker_api.get_messages(vhost, "q.dlq", count=5)] == ["newest"]
    assert not plan(changed, broker_api).has_changes


def test_changing_a_queue_type_needs_a_migration_and_keeps_the_queue_and_its_messages(
    broker_api, topology
):
    vhost = topology.vhost
    apply(topology, broker_api)
    assert broker_api.publish(vhost, "", "q.dlq", "keep me")
    # a classic queue, because its statistics (the message count) arrive within 5 s
    assert wait_for(lambda: getattr(broker_api.queue_stats(vhost, "q.dlq"), "messages", 0) == 1)
    changed = with_queue(topology, "q.dlq", type=QueueType.QUORUM)
    changed = with_queue(changed, "q.ai", message_ttl=600)

    migration = change(plan(changed, broker_api), "queue", "q.dlq")
    assert migration.kind is ChangeKind.NEEDS_MIGRATION
    assert migration.render()[0] == (
        "! queue q.dlq needs migration: type classic -> quorum (1 message kept)"
    )
    assert len(migration.steps) == 5

    with pytest.raises(MigrationRequiredError, match=r"q\.dlq needs migration") as raised:
        apply(changed, broker_api)
    assert "only when it is empty" in str(raised.value)

    live = broker_api.get_queue(vhost, "q.dlq")
    assert live is not None and live.type == "classic"
    [message] = broker_api.get_messages(vhost, "q.dlq")
    assert message["payload"] == "keep me"
    policy = broker_api.get_policy(vhost, "growbin.q.q.ai")
    assert policy is not None and policy.definition["message-ttl"] == 300000, "nothing changed"


def test_apply_with_allow_partial_applies_the_rest_and_reports_the_migration(broker_api, topology):
    vhost = topology.vhost
    apply(topology, broker_api)
    changed = with_queue(topology, "q.dlq", priority=5)
    changed = with_queue(changed, "q.ai", message_ttl=600)

    result = apply(changed, broker_api, allow_partial=True)

    assert result.needs_migration
    assert [c.name for c in result.migrations] == ["q.dlq"]
    assert "x-max-priority (unset) -> 5" in result.migrations[0].detail
    policy = broker_api.get_policy(vhost, "growbin.q.q.ai")
    assert policy is not None and policy.definition["message-ttl"] == 600000
    live = broker_api.get_queue(vhost, "q.dlq")
    assert live is not None and "x-max-priority" not in live.arguments


def test_a_message_with_an_unroutable_key_lands_in_q_unroutable(broker_api, topology):
    vhost = topology.vhost
    apply(topology, broker_api)

    # the alternate exchange took it, so the broker reports it as routed
    assert broker_api.publish(vhost, "tasks", "nothing.matches.this", "lost?")
    [message] = broker_api.get_messages(vhost, "q.unroutable")
    assert message["payload"] == "lost?"
    assert message["routing_key"] == "nothing.matches.this"

    assert broker_api.publish(vhost, "tasks", "ai.analyze", "routed")
    assert len(broker_api.get_messages(vhost, "q.unroutable", count=10)) == 1


def test_bindings_the_file_does_not_declare_are_removed_and_celerys_own_are_left_alone(
    broker_api, topology
):
    vhost = topology.vhost
    apply(topology, broker_api)
    # what a worker's native delayed delivery adds: Celery's chain, and its way back into the
    # delay exchange, both expected
    broker_api.put_exchange(vhost, "celery_delayed_delivery", "topic")
    for spec in delay_chain_bindings(topology):
        broker_api.put_binding(
            vhost, spec.exchange, spec.queue, spec.routing_key, destination_type="exchange"
        )
    # what older workers added on the work exchange, and a hand-made binding: drift
    broker_api.put_binding(
        vhost, "celery_delayed_delivery", "tasks", "#.ai.*", destination_type="exchange"
    )
    broker_api.put_binding(vhost, "tasks", "q.ai", "#.ai.*")
    broker_api.put_binding(vhost, "tasks", "q.ai", "legacy.*")

    result = apply(topology, broker_api)

    assert sorted(line for c in result.drift for line in c.render()) == [
        f"- unbind {name} (not in the topology: it changes routing; declare it in the file "
        "to keep it)"
        for name in (
            "celery_delayed_delivery -> tasks (exchange) [#.ai.*]",
            "tasks -> q.ai [#.ai.*]",
            "tasks -> q.ai [legacy.*]",
        )
    ]
    keys = {b.routing_key for b in broker_api.list_bindings(vhost) if b.destination == "q.ai"}
    assert keys == {"ai.*", "q.ai", "#.q.ai"}  # the file's, and the delay exchange's two
    chain = [b for b in broker_api.list_bindings(vhost) if b.source == "celery_delayed_delivery"]
    assert {b.destination for b in chain} == {"growbin.delayed"}
    assert not plan(topology, broker_api).has_changes


def test_a_limit_set_as_a_queue_argument_is_a_note_not_a_migration(broker_api, topology):
    vhost = topology.vhost
    broker_api.put_queue(
        vhost, "q.batch", arguments={"x-queue-type": "quorum", "x-message-ttl": 1000}
    )

    q_batch = change(apply(topology, broker_api), "queue", "q.batch")

    assert q_batch.kind is ChangeKind.UNCHANGED
    [note] = q_batch.notes
    assert "x-message-ttl=1000" in note
    assert "406 inequivalent arg" in note


def test_a_stale_growbin_policy_is_deleted_only_once_its_queue_is_gone(broker_api, topology):
    vhost = topology.vhost
    apply(topology, broker_api)
    queues = {n: q for n, q in topology.queues.items() if n != "q.sched"}
    smaller = topology.model_copy(update={"queues": queues})

    kept = change(apply(smaller, broker_api), "policy", "growbin.q.q.sched")
    assert kept.kind is ChangeKind.EXTRA
    assert broker_api.get_policy(vhost, "growbin.q.q.sched") is not None

    broker_api.delete_queue(vhost, "q.sched", if_empty=False, if_unused=False)
    deleted = change(apply(smaller, broker_api), "policy", "growbin.q.q.sched")
    assert deleted.kind is ChangeKind.DELETE_POLICY
    assert broker_api.get_policy(vhost, "growbin.q.q.sched") is None


def test_exported_definitions_imported_into_the_broker_match_the_topology(broker_api, topology):
    broker_api.import_definitions(export_definitions(topology))

    result = plan(topology, broker_api)

    assert {c.kind for c in result} == {ChangeKind.UNCHANGED}, result.render()


def test_an_unreachable_management_api_raises_service_unavailable_naming_the_plugin():
    api = BrokerApi("http://guest:s3cret-pw@127.0.0.1:1/api", timeout=2)
    with api, pytest.raises(ServiceUnavailableError) as raised:
        api.overview()
    message = str(raised.value)
    assert "http://guest:****@127.0.0.1:1/api" in message
    assert "rabbitmq_management" in message
    assert "s3cret-pw" not in message
