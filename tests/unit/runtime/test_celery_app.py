from contextlib import nullcontext
from types import SimpleNamespace
from typing import Any

import pytest
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
)

from growbin.errors import ConfigError
from growbin.runtime.celery_app import (
    TopologyRouter,
    UnroutedTaskError,
    celery_config,
    create_app,
    kombu_queues,
)
from growbin.runtime.registry import registrars
from growbin.runtime.worker import worker_options
from growbin.runtime.worker_hooks import install_worker_hooks
from growbin.settings import Settings, load_settings
from growbin.topology import loader
from growbin.topology.declare import (
    DELAY_EXCHANGE,
    delay_chain_bindings,
    desired_bindings,
    desired_exchanges,
)
from growbin.topology.model import Pool


@pytest.fixture
def production():
    return loader.load("production").topology


@pytest.fixture
def app():
    # an amqp URL makes Celery take RabbitMQ's paths; nothing here connects to it
    settings = load_settings(broker_url="amqp://guest:guest@127.0.0.1:1/unused")
    celery_app = create_app(settings, loader.load("production"))
    yield celery_app
    celery_app.close()


class RecordingChannel:
    """Just enough of an AMQP channel for kombu to declare and bind through."""

    def __init__(self) -> None:
        self.exchanges: set[tuple[str, str]] = set()
        self.queue_bindings: set[tuple[str, str, str]] = set()
        self.exchange_bindings: set[tuple[str, str, str]] = set()

    def exchange_declare(self, exchange: str, type: str, **_: Any) -> None:
        self.exchanges.add((exchange, type))

    def queue_declare(self, queue: str, **_: Any) -> tuple[str, int, int]:
        return queue, 0, 0

    def prepare_queue_arguments(self, arguments: dict[str, Any], **_: Any) -> dict[str, Any]:
        return arguments

    def queue_bind(self, queue: str, exchange: str, routing_key: str, **_: Any) -> None:
        self.queue_bindings.add((exchange, queue, routing_key))

    def exchange_bind(self, destination: str, source: str, routing_key: str, **_: Any) -> None:
        self.exchange_bindings.add((source, destination, routing_key))


class FakeConnection:
    def __init__(self, channel: RecordingChannel) -> None:
        self._channel = channel

    def channel(self) -> RecordingChannel:
        return self._channel


# a producer for send_task that never connects; capture_sends takes the message instead
FAKE = SimpleNamespace(connection=SimpleNamespace(_reraise_as_library_errors=nullcontext))


def capture_sends(app) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    app.amqp.send_task_message = lambda producer, name, message, **options: sent.append(options)
    return sent


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


def test_every_kombu_queue_names_the_delay_exchange_with_its_own_name_as_key(production):
    queues = kombu_queues(production)
    assert [q.name for q in queues] == list(production.queues)
    for queue in queues:
        assert (queue.exchange.name, queue.exchange.type) == (DELAY_EXCHANGE, "topic")
        assert queue.exchange.durable and not queue.exchange.auto_delete
        assert queue.routing_key == queue.name
        assert (queue.durable, queue.auto_delete) == (True, False)
        # the file's bindings, and nothing else, on the file's exchanges
        assert {(b.exchange.name, b.routing_key) for b in queue.bindings} == {
            (b.exchange, b.routing_key) for b in production.queues[queue.name].bindings
        }


def test_celerys_default_exchange_is_the_delay_exchange_not_one_named_after_a_queue(app):
    assert app.conf.task_default_queue == "q.ai"
    default = app.amqp.default_exchange
    assert (default.name, default.type) == (DELAY_EXCHANGE, "topic")
    assert app.amqp.default_queue.exchange.name == DELAY_EXCHANGE
    assert {q.exchange.name for q in app.amqp.queues.values()} == {DELAY_EXCHANGE}


def test_a_worker_declares_only_the_exchanges_and_bindings_that_apply_creates(app, production):
    channel = RecordingChannel()
    for queue in app.amqp.queues.values():
        queue.bind(channel).declare()  # the consumer's: a copy bound to its channel
        queue.declare(channel=channel)  # a publisher's (kombu maybe_declare): the original
    assert channel.exchanges <= {
        (name, x.type.value) for name, x in desired_exchanges(production).items()
    }
    assert DELAY_EXCHANGE in {name for name, _ in channel.exchanges}
    assert channel.queue_bindings == {
        (b.exchange, b.queue, b.routing_key)
        for b in desired_bindings(production)
        if not b.routing_key.startswith("#.") or b.exchange != DELAY_EXCHANGE
    }


def test_a_channel_bound_copy_keeps_the_delay_exchange_and_the_files_bindings(app):
    queue = app.amqp.queues["q.api"].bind(RecordingChannel())
    assert queue.exchange.name == DELAY_EXCHANGE and queue.routing_key == "q.api"
    assert [(b.exchange.name, b.routing_key) for b in queue.bindings] == [("tasks", "api.#")]


def test_native_delayed_delivery_binds_only_the_delay_exchange(app, production):
    # what Celery's DelayedDelivery step runs for every queue at worker start
    channel = RecordingChannel()
    for queue in app.amqp.queues.values():
        bind_queue_to_native_delayed_delivery_exchange(FakeConnection(channel), queue)
    assert channel.queue_bindings == {
        (b.exchange, b.queue, b.routing_key)
        for b in desired_bindings(production)
        if b.exchange == DELAY_EXCHANGE and b.routing_key.startswith("#.")
    }
    assert channel.exchange_bindings == {
        (b.exchange, b.queue, b.routing_key) for b in delay_chain_bindings(production)
    }
    assert not {x for x, _, _ in channel.queue_bindings} & set(production.exchanges)


def test_a_users_countdown_goes_through_rabbitmqs_delayed_delivery(app):
    sent = capture_sends(app)
    app.send_task("growbin.jobs.map_search", countdown=5, ignore_result=True, producer=FAKE)
    [options] = sent
    assert options["exchange"].name == "celery_delayed_27"
    assert "queue" not in options  # not held by a worker until its ETA
    bits, _, key = options["routing_key"].rpartition(".q.")
    assert int(bits.replace(".", ""), 2) == 5 and key == "api"


def test_a_task_without_countdown_goes_through_its_routes_exchange_and_key(app):
    sent = capture_sends(app)
    app.send_task("growbin.jobs.map_search", ignore_result=True, producer=FAKE)
    [options] = sent
    assert (options["exchange"], options["routing_key"]) == ("tasks", "api.map.search")
    assert options["queue"].name == "q.api"


@pytest.fixture
def worker_metrics_restored(monkeypatch):
    """install_worker_hooks switches prometheus_client to multiprocess mode for the whole
    process; put single-process mode back so later tests count their metrics once."""
    from prometheus_client import values

    from growbin.ops.metrics import reset_metrics
    from growbin.ops.metrics_worker import MULTIPROC_ENV

    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    yield
    reset_metrics()


def test_a_profile_decides_acks_late_when_the_worker_sets_it_before_the_tasks_bind(
    production, worker_metrics_restored
):
    # the order `growbin worker` follows: build the app, set the profile's acks_late, start
    settings = load_settings(broker_url="memory://")
    loaded = loader.load("production")
    for acks_late in (False, True):
        celery_app = create_app(settings, loaded, registrars=registrars(settings))
        install_worker_hooks(celery_app, settings, "api")
        celery_app.conf.task_acks_late = acks_late
        celery_app.finalize()
        growbin = [t for n, t in celery_app.tasks.items() if n.startswith("growbin.")]
        assert growbin and all(t.acks_late is acks_late for t in growbin)
        celery_app.close()


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
