"""The comparison behind plan, the start checks and /readyz: every difference that matters."""

from dataclasses import replace

import pytest
from tests.unit.topology.live_state import applied, binding, with_bindings

from growbin.topology import loader
from growbin.topology.broker_api import LivePolicy
from growbin.topology.changes import ChangeKind
from growbin.topology.declare import delay_chain_bindings
from growbin.topology.diff import compare


@pytest.fixture
def production():
    return loader.load("production").topology.model_copy(update={"vhost": "audit"})


def test_a_vhost_as_apply_leaves_it_has_no_drift(production):
    result = compare(production, applied(production))
    assert result.drift == []
    assert not result.has_changes


def test_a_binding_the_file_does_not_declare_is_drift_that_apply_removes(production):
    # what Celery's native delayed delivery added on the work exchange before the delay exchange
    live = with_bindings(applied(production), binding("tasks", "q.ai", "#.ai.*"))

    result = compare(production, live)

    [unbind] = result.drift
    assert unbind.kind is ChangeKind.UNBIND
    assert unbind.render() == [
        "- unbind tasks -> q.ai [#.ai.*] (not in the topology: it changes routing; declare it "
        "in the file to keep it)"
    ]
    assert unbind.about == {"tasks", "q.ai"}


def test_a_binding_from_an_exchange_outside_the_topology_into_our_queue_is_drift(production):
    # task_default_queue used to make every worker declare a direct exchange named after it
    live = with_bindings(applied(production), binding("q.ai", "q.ai", "q.ai"))
    assert [c.name for c in compare(production, live).drift] == ["q.ai -> q.ai [q.ai]"]


def test_celerys_own_plumbing_is_not_ours_but_the_delay_chain_must_return_as_declared(
    production,
):
    chain = [
        binding(s.exchange, s.queue, s.routing_key, "exchange")
        for s in delay_chain_bindings(production)
    ]
    celery_own = [
        binding("celery.pidbox", "api@host.celery.pidbox", ""),
        binding("reply.celery.pidbox", "0f3a-reply", "0f3a-reply"),
        binding("celery_delayed_1", "celery_delayed_0", "*.*.0.#", "exchange"),
    ]
    live = with_bindings(applied(production), *chain, *celery_own)
    assert compare(production, live).drift == []

    stale = binding("celery_delayed_delivery", "tasks", "#.ai.*", "exchange")
    [change] = compare(production, with_bindings(live, stale)).drift
    assert change.name == "celery_delayed_delivery -> tasks (exchange) [#.ai.*]"


def test_a_foreign_policy_of_higher_priority_overrides_ours_and_is_drift(production):
    live = applied(production)
    live.policies["ha-all"] = LivePolicy("ha-all", ".*", "queues", 200, {"max-length": 1})

    drift = compare(production, live).drift

    assert {c.kind for c in drift} == {ChangeKind.OVERRIDDEN}
    q_ai = next(c for c in drift if c.name == "growbin.q.q.ai")
    assert "policy ha-all (priority 200) also matches q.ai" in q_ai.render()[0]
    assert "lower ha-all's priority below 100" in q_ai.render()[0]


def test_a_missing_vhost_plans_its_creation_under_the_given_name(production):
    result = compare(production, replace(applied(production), vhost_exists=False))
    assert result.changes[0].render() == ["+ create vhost audit"]
    assert result.vhost == "audit"
