import json

import pytest

from growbin.topology import loader
from growbin.topology.declare import queue_arguments
from growbin.topology.export import export_definitions


@pytest.fixture
def production():
    return loader.load("production").topology


def test_the_export_has_the_sections_rabbitmq_imports_and_no_users_or_secrets(production):
    definitions = export_definitions(production)
    assert set(definitions) == {"vhosts", "exchanges", "queues", "bindings", "policies"}
    text = json.dumps(definitions)
    assert "password" not in text
    assert "guest" not in text


def test_exported_queues_carry_exactly_the_arguments_celery_declares(production):
    queues = {q["name"]: q for q in export_definitions(production)["queues"]}
    assert set(queues) == set(production.queues)
    for name, queue in production.queues.items():
        assert queues[name]["arguments"] == queue_arguments(queue)
        assert queues[name]["durable"] is True
        assert queues[name]["auto_delete"] is False
        assert queues[name]["vhost"] == "/"


def test_exported_exchanges_have_no_arguments_because_the_alternate_exchange_is_a_policy(
    production,
):
    exchanges = {x["name"]: x for x in export_definitions(production)["exchanges"]}
    assert exchanges["tasks"] == {
        "name": "tasks",
        "vhost": "/",
        "type": "topic",
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {},
    }


def test_every_topology_binding_is_exported(production):
    exported = {
        (b["source"], b["destination"], b["routing_key"])
        for b in export_definitions(production)["bindings"]
    }
    expected = {
        (b.exchange, qname, b.routing_key)
        for qname, q in production.queues.items()
        for b in q.bindings
    }
    # and each queue's two bindings on the delay exchange, which its workers also create
    expected |= {
        ("growbin.delayed", qname, key)
        for qname in production.queues
        for key in (qname, f"#.{qname}")
    }
    assert exported == expected


def test_policies_use_the_definitions_keys(production):
    policies = {p["name"]: p for p in export_definitions(production)["policies"]}
    assert policies["growbin.q.q.ai"]["apply-to"] == "queues"
    assert policies["growbin.q.q.ai"]["pattern"] == r"^q\.ai$"
    assert policies["growbin.q.q.ai"]["priority"] == 100
    assert policies["growbin.q.q.ai"]["definition"]["message-ttl"] == 300000
    assert policies["growbin.x.tasks"]["definition"] == {"alternate-exchange": "unroutable"}


def test_the_export_follows_the_topology_vhost(production):
    topology = production.model_copy(update={"vhost": "growbin"})
    definitions = export_definitions(topology)
    assert definitions["vhosts"] == [{"name": "growbin"}]
    sections = ("exchanges", "queues", "bindings", "policies")
    assert all(item["vhost"] == "growbin" for s in sections for item in definitions[s])


@pytest.mark.parametrize("preset", loader.PRESETS)
def test_every_preset_exports_to_json(preset):
    definitions = export_definitions(loader.load(preset).topology)
    assert json.loads(json.dumps(definitions)) == definitions
