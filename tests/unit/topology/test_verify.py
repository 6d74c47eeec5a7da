"""Verify before consuming: what each process depends on, and how a refusal reads."""

import pytest
from tests.unit.topology.live_state import (
    FakeBrokerApi,
    applied,
    binding,
    with_bindings,
    without_policy,
)

from growbin.errors import ConfigError
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.verify import (
    describe,
    drift,
    objects_in_use,
    published_queues,
    verify_before_start,
)


@pytest.fixture
def production():
    return loader.load("production").topology.model_copy(update={"vhost": "audit"})


def test_a_queue_depends_on_its_exchanges_and_where_its_dead_and_unroutable_letters_go(
    production,
):
    assert objects_in_use(production, ["q.api"]) == {
        "q.api",
        "tasks",  # bound to it
        "growbin.delayed",  # countdowns and retries come back through it
        "dlx",  # its dead-letter exchange ...
        "q.dlq",  # ... and the queue that holds them
        "unroutable",  # the alternate exchange of tasks ...
        "q.unroutable",  # ... and its queue
    }


def test_beat_depends_on_the_queues_its_schedule_publishes_to(production):
    tasks = [entry.task for entry in production.schedule.values()]
    assert published_queues(production, tasks) == {"q.batch", "q.sched"}


def test_the_drift_of_another_profiles_queue_does_not_stop_a_worker(production):
    api = FakeBrokerApi(without_policy(applied(production), "growbin.q.q.batch"))

    assert drift(production, api, ["q.api"]) == []
    assert [c.name for c in drift(production, api, ["q.batch"])] == ["growbin.q.q.batch"]
    assert [c.name for c in drift(production, api, None)] == ["growbin.q.q.batch"]
    assert api.vhosts == ["audit"] * 3  # the topology's vhost, set from the broker URL


def test_a_missing_dead_letter_policy_or_alternate_exchange_stops_every_worker(production):
    for missing in ("growbin.q.q.dlq", "growbin.x.tasks"):
        api = FakeBrokerApi(without_policy(applied(production), missing))
        assert [c.name for c in drift(production, api, ["q.api"])] == [missing]


def test_an_undeclared_binding_on_a_queue_in_use_stops_its_worker(production):
    api = FakeBrokerApi(with_bindings(applied(production), binding("tasks", "q.ai", "#.ai.*")))
    assert [c.name for c in drift(production, api, ["q.ai"])] == ["tasks -> q.ai [#.ai.*]"]


def test_a_refusal_lists_the_differences_and_says_to_run_apply(production):
    api = FakeBrokerApi(without_policy(applied(production), "growbin.q.q.api"))
    message = describe(production, drift(production, api, ["q.api"]), "worker api")
    assert message.startswith("worker api refuses to start: vhost 'audit' differs")
    assert "+ create policy growbin.q.q.api (message-ttl=300000" in message
    assert "run `growbin topology apply`" in message
    assert "GROWBIN_SKIP_TOPOLOGY_CHECK" in message


def test_the_check_can_be_skipped_in_development_without_asking_the_broker(production):
    settings = load_settings(
        env="development",
        skip_topology_check=True,
        rabbitmq_api_url="http://guest:guest@127.0.0.1:1/api",
    )
    verify_before_start(settings, production, queues=["q.api"], who="worker api")


@pytest.mark.parametrize("env", ["staging", "production"])
def test_skipping_the_check_is_refused_in_staging_and_production(env):
    with pytest.raises(ConfigError, match="GROWBIN_SKIP_TOPOLOGY_CHECK is set"):
        load_settings(
            env=env,
            skip_topology_check=True,
            broker_url="amqp://app:pw@rabbit:5672/growbin",
            rabbitmq_api_url="http://app:pw@rabbit:15672/api",
            api_secret="x" * 40,
        )
