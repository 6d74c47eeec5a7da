import pytest

from growbin.errors import ConfigError
from growbin.runtime.celery_app import TopologyRouter, UnroutedTaskError, celery_config
from growbin.runtime.worker import worker_options
from growbin.settings import Settings
from growbin.topology import loader
from growbin.topology.model import Pool


@pytest.fixture
def production():
    return loader.load("production").topology


def test_the_app_accepts_json_only_and_waits_for_publisher_confirms(production):
    conf = celery_config(Settings(), production)
    assert conf["accept_content"] == ["json"]
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["broker_transport_options"]["confirm_publish"] is True
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["task_create_missing_queues"] is False


def test_declared_queues_carry_only_fixed_arguments(production):
    queues = {q.name: q for q in celery_config(Settings(), production)["task_queues"]}
    assert queues["q.ai"].queue_arguments == {"x-queue-type": "quorum"}
    assert queues["q.dlq"].queue_arguments == {"x-queue-type": "classic"}
    assert [(b.exchange.name, b.routing_key) for b in queues["q.api"].bindings] == [
        ("tasks", "api.#")
    ]


def test_the_router_sends_a_task_to_its_routes_exchange_key_and_queue(production):
    route = TopologyRouter(production)("growbin.jobs.map_search", (), {}, {})
    assert route == {
        "exchange": "tasks",
        "exchange_type": "topic",
        "routing_key": "api.map.search",
        "queue": "q.api",
        "priority": 5,
    }


def test_a_glob_route_covers_a_family_of_tasks(production):
    assert TopologyRouter(production)("growbin.demo.add", (), {}, {})["routing_key"] == "api.demo"


def test_an_unrouted_task_raises_with_the_fix(production):
    with pytest.raises(UnroutedTaskError, match="add it under `routes:`"):
        TopologyRouter(production)("growbin.unknown", (), {}, {})


def test_celery_internal_tasks_fall_back_to_the_default_queue(production):
    assert TopologyRouter(production)("celery.chord_unlock", (), {}, {}) is None


def test_worker_options_come_from_the_profile(production):
    options = worker_options(production, "batch", hostname="batch@test")
    argv = options.argv()
    assert "--queues=q.batch,q.sched" in argv
    assert "--pool=prefork" in argv and "--concurrency=4" in argv
    assert "--prefetch-multiplier=1" in argv
    assert "--time-limit=600.0" in argv and "--soft-time-limit=540.0" in argv
    assert "--hostname=batch@test" in argv


def test_worker_options_can_override_pool_and_concurrency(production):
    options = worker_options(production, "ai", concurrency=1, pool=Pool.SOLO)
    assert options.concurrency == 1 and options.pool is Pool.SOLO
    assert options.hostname.startswith("ai@")


def test_an_unknown_profile_lists_the_known_ones(production):
    with pytest.raises(ConfigError, match=r"Did you mean 'api'.*Known profiles: ai, api, batch"):
        worker_options(production, "apii")
