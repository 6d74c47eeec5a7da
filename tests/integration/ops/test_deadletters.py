"""The dead-letter tools against a real RabbitMQ vhost (production topology) and PostgreSQL."""

import json
import os
import subprocess
import sys
import time
import uuid

import amqp
import pytest
from kombu import Connection

from growbin.db.models import DeadLetterState
from growbin.errors import ServiceUnavailableError
from growbin.ops.deadletters.errors import (
    ConfirmationRequiredError,
    DeadLetterBusyError,
    DeadLetterError,
    ReplayError,
)
from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.lock import queue_lock
from growbin.ops.deadletters.service import DeadLetterService
from growbin.runtime.deadletter import DEATH_HEADER, DeathInfo, now_iso
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

DLQ = "q.dlq"
WAIT = 15.0


@pytest.fixture
def topology(broker_api, temp_vhost):
    topology = loader.load("production").topology.model_copy(update={"vhost": temp_vhost})
    apply(topology, broker_api)
    return topology


@pytest.fixture
def broker_url(temp_vhost):
    return f"amqp://guest:guest@127.0.0.1:5672/{temp_vhost}"


@pytest.fixture
def settings(broker_url, database_url, rabbitmq_api_url):
    return load_settings(
        env="test",
        broker_url=broker_url,
        database_url=database_url,
        rabbitmq_api_url=rabbitmq_api_url,
    )


@pytest.fixture
def service(settings, topology):
    with DeadLetterService(settings, topology) as service:
        yield service


@pytest.fixture
def channel(broker_url, topology):
    conn = Connection(broker_url, connect_timeout=5)
    conn.connect()
    ch = conn.channel()
    ch.auto_decode = False
    yield ch
    conn.release()


def celery_message(task, task_id, *, args=(), retries=0):
    """A Celery protocol-2 message: (body, headers, properties)."""
    body = json.dumps(
        [list(args), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    ).encode()
    headers = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "eta": None,
        "expires": None,
        "retries": retries,
        "timelimit": [None, None],
        "argsrepr": repr(tuple(args)),
        "kwargsrepr": "{}",
        "origin": "gen1@test",
        "ignore_result": False,
    }
    properties = {
        "correlation_id": task_id,
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "delivery_mode": 2,
        "priority": 0,
    }
    return body, headers, properties


def publish(channel, exchange, routing_key, body, headers, properties):
    channel.basic_publish_confirm(
        amqp.Message(body=body, application_headers=headers, **properties),
        exchange=exchange,
        routing_key=routing_key,
        mandatory=True,
    )


def publish_worker_dead_letter(channel, task="growbin.jobs.report_generate", task_id=None):
    """What a worker publishes when a task fails for good: the message plus x-growbin-death."""
    task_id = task_id or str(uuid.uuid4())
    body, headers, properties = celery_message(task, task_id, args=(7,), retries=2)
    info = DeathInfo(
        reason="failed",
        task=task,
        task_id=task_id,
        exchange="tasks",
        routing_key="batch.report",
        queue="q.batch",
        attempts=3,
        first_failure=now_iso(),
        last_failure=now_iso(),
        exception_type="builtins.ValueError",
        exception_message="report template missing",
        traceback='Traceback (most recent call last):\n  File "x.py"\nValueError: template',
        retryable=False,
        worker="batch@host",
    )
    publish(channel, "dlx", "dlq", body, {**headers, DEATH_HEADER: info.as_header()}, properties)
    return info


def publish_expiring_task(channel, task="growbin.jobs.analytics_daily", task_id=None):
    """A task with a 1 ms per-message TTL: RabbitMQ dead-letters it from q.batch as expired."""
    task_id = task_id or str(uuid.uuid4())
    body, headers, properties = celery_message(task, task_id, args=("2024-01-01",))
    publish(channel, "tasks", "batch.analytics", body, headers, {**properties, "expiration": "1"})
    return task_id


def depth(channel, queue=DLQ):
    return channel.queue_declare(queue=queue, passive=True).message_count


def wait_depth(channel, expected, queue=DLQ, timeout=WAIT):
    """Wait until the queue holds ``expected`` ready messages (requeues are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        found = depth(channel, queue)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def take(channel, queue):
    """Take every message from a queue (acked): the arrivals a replay produced."""
    taken = []
    while (message := channel.basic_get(queue=queue, no_ack=True)) is not None:
        taken.append(message)
    return taken


@pytest.fixture
def two_dead_letters(channel):
    """One dead letter from a worker, one from the broker (TTL expiry), both in q.dlq."""
    info = publish_worker_dead_letter(channel)
    expired_id = publish_expiring_task(channel)
    assert wait_depth(channel, 2) == 2, "the expired task never reached q.dlq"
    return info, expired_id


def by_task_id(records):
    return {r.task_id: r for r in records}


def test_list_shows_a_worker_dead_letter_and_a_broker_dead_letter_with_their_reasons(
    service, two_dead_letters
):
    info, expired_id = two_dead_letters

    records = by_task_id(service.list())

    failed = records[info.task_id]
    assert failed.dead_letter_id == info.dead_letter_id
    assert (failed.reason, failed.origin, failed.state) == ("failed", "growbin", "queued")
    assert (failed.exchange, failed.routing_key, failed.queue) == (
        "tasks",
        "batch.report",
        "q.batch",
    )
    assert failed.exception_type == "builtins.ValueError"
    assert failed.attempts == 3
    expired = records[expired_id]
    assert (expired.reason, expired.origin, expired.state) == ("expired", "broker", "queued")
    assert expired.task_name == "growbin.jobs.analytics_daily"
    assert (expired.exchange, expired.routing_key) == ("tasks", "batch.analytics")
    assert expired.queue == "q.batch"
    assert expired.attempts == 1
    assert expired.exception_type == ""


def test_listing_twice_neither_loses_nor_duplicates_a_dead_letter(
    service, channel, two_dead_letters
):
    first = service.list()
    assert wait_depth(channel, 2) == 2
    second = service.list()

    assert wait_depth(channel, 2) == 2
    assert sorted(r.dead_letter_id for r in first) == sorted(r.dead_letter_id for r in second)
    assert len(second) == 2
    counts = service.sync()
    assert (counts.in_queue, counts.new, counts.dropped) == (2, 0, 0)


def test_list_filters_by_reason_task_exception_and_age(service, two_dead_letters):
    info, expired_id = two_dead_letters

    def ids(**options):
        return {r.task_id for r in service.list(DeadLetterFilter.from_options(**options))}

    assert ids(reason="expired") == {expired_id}
    assert ids(task="growbin.jobs.report_*") == {info.task_id}
    assert ids(exception="TEMPLATE missing") == {info.task_id}
    assert ids(queue="q.batch") == {info.task_id, expired_id}
    assert ids(older_than="1h") == set()
    assert ids(newer_than="1h") == {info.task_id, expired_id}
    assert ids(states=["replayed"]) == set()


def test_show_gives_the_exception_traceback_and_original_message(service, two_dead_letters):
    info, _ = two_dead_letters

    record = service.show(info.dead_letter_id[:8])

    assert record.exception_message == "report template missing"
    assert "ValueError: template" in record.traceback
    assert record.retryable is False
    assert record.worker == "batch@host"
    assert json.loads(record.body)[0] == [7]
    assert record.headers["task"] == "growbin.jobs.report_generate"
    assert record.content_type == "application/json"


def test_show_of_an_unknown_id_names_the_list_command(service, two_dead_letters):
    with pytest.raises(DeadLetterError, match="growbin dlq list"):
        service.show("0123456789abcdef")


def test_replay_sends_one_task_back_to_its_route_with_a_fresh_retry_budget(
    service, channel, two_dead_letters
):
    info, expired_id = two_dead_letters

    report = service.replay([info.dead_letter_id])

    assert [item.task_id for item in report.replayed] == [info.task_id]
    assert not report.replayed[0].from_archive
    arrived = take(channel, "q.batch")
    assert len(arrived) == 1
    headers = arrived[0].headers
    assert headers["id"] == info.task_id
    assert headers["task"] == "growbin.jobs.report_generate"
    assert headers["retries"] == 0
    assert DEATH_HEADER not in headers
    assert "x-death" not in headers
    assert json.loads(arrived[0].body)[0] == [7]
    assert arrived[0].properties["correlation_id"] == info.task_id
    assert wait_depth(channel, 1) == 1
    records = by_task_id(service.list(DeadLetterFilter.from_options(states=["queued", "replayed"])))
    assert records[info.task_id].state == "replayed"
    assert records[info.task_id].replay_count == 1
    assert records[info.task_id].last_replayed_to == "tasks:batch.report"
    assert records[expired_id].state == "queued"


def test_a_replayed_broker_dead_letter_loses_its_ttl_and_death_history(
    service, channel, two_dead_letters
):
    _, expired_id = two_dead_letters

    report = service.replay(flt=DeadLetterFilter.from_options(reason="expired"))

    assert [item.task_id for item in report.replayed] == [expired_id]
    arrived = take(channel, "q.batch")
    assert len(arrived) == 1, "the replay expired again: its per-message TTL was kept"
    assert "expiration" not in arrived[0].properties
    assert not any(key.startswith(("x-death", "x-first-death")) for key in arrived[0].headers)
    assert arrived[0].headers["retries"] == 0


def test_replay_to_another_route_uses_it(service, channel, two_dead_letters):
    info, _ = two_dead_letters

    report = service.replay([info.dead_letter_id], to="tasks:api.demo")

    assert (report.replayed[0].exchange, report.replayed[0].routing_key) == ("tasks", "api.demo")
    assert [m.headers["id"] for m in take(channel, "q.api")] == [info.task_id]
    assert take(channel, "q.batch") == []


def test_replay_to_a_route_that_reaches_no_queue_keeps_the_dead_letter(
    service, channel, two_dead_letters
):
    info, _ = two_dead_letters

    # dlx is a direct exchange without an alternate exchange: mandatory makes RabbitMQ return it
    with pytest.raises(ReplayError, match="no queue is bound"):
        service.replay([info.dead_letter_id], to="dlx:nowhere")
    with pytest.raises(ReplayError, match="no-such-exchange"):
        service.replay([info.dead_letter_id], to="no-such-exchange:x")

    assert wait_depth(channel, 2) == 2
    assert service.show(info.dead_letter_id).state == "queued"


def test_replaying_an_already_replayed_dead_letter_is_skipped(service, channel, two_dead_letters):
    info, _ = two_dead_letters
    service.replay([info.dead_letter_id])
    take(channel, "q.batch")

    report = service.replay([info.dead_letter_id])

    assert report.replayed == []
    assert report.skipped[0][0] == info.dead_letter_id
    assert "already replayed" in report.skipped[0][1]
    assert take(channel, "q.batch") == []


def test_replay_needs_exactly_one_selection(service):
    with pytest.raises(DeadLetterError, match="--all"):
        service.replay()


def test_purge_without_confirmation_refuses_and_keeps_everything(
    service, channel, two_dead_letters
):
    with pytest.raises(ConfirmationRequiredError, match="--yes"):
        service.purge(DeadLetterFilter(), confirm=False)

    assert wait_depth(channel, 2) == 2
    assert {r.state for r in service.list()} == {"queued"}


def test_purge_with_confirmation_removes_only_the_selected_and_keeps_their_records(
    service, channel, two_dead_letters
):
    info, expired_id = two_dead_letters

    purged = service.purge(DeadLetterFilter.from_options(reason="failed"), confirm=True)

    assert purged == 1
    assert wait_depth(channel, 1) == 1
    everything = by_task_id(
        service.list(DeadLetterFilter.from_options(states=["purged", "queued"]))
    )
    assert everything[info.task_id].state == "purged"
    assert everything[expired_id].state == "queued"
    assert service.sync().dropped == 0


def test_a_dead_letter_removed_outside_the_tools_is_dropped_and_replays_from_the_archive(
    service, channel
):
    info = publish_worker_dead_letter(channel)
    assert wait_depth(channel, 1) == 1
    service.sync()
    assert take(channel, DLQ), "the dead letter should have been there"  # like drop-head would

    counts = service.sync()

    assert counts.dropped == 1
    record = service.show(info.dead_letter_id)
    assert record.state == DeadLetterState.DROPPED
    report = service.replay([info.dead_letter_id])
    assert report.replayed[0].from_archive
    arrived = take(channel, "q.batch")
    assert [m.headers["id"] for m in arrived] == [info.task_id]
    assert arrived[0].headers["retries"] == 0
    assert json.loads(arrived[0].body)[0] == [7]
    assert service.show(info.dead_letter_id).state == DeadLetterState.REPLAYED


def test_a_message_that_is_not_a_celery_task_is_still_a_dead_letter(service, channel):
    publish(channel, "dlx", "dlq", b"\x00\xffraw bytes", {"source": "by hand"}, {})
    assert wait_depth(channel, 1) == 1

    (record,) = service.list()

    assert record.task_name == "(not a task)"
    assert record.reason == "unknown"
    assert record.body_base64 is True
    assert wait_depth(channel, 1) == 1


def test_the_unroutable_queue_can_be_read_with_its_queue_name(settings, topology, channel):
    body, headers, properties = celery_message("growbin.jobs.nothing", "u-1")
    publish(channel, "tasks", "no.such.key", body, headers, properties)
    assert wait_depth(channel, 1, queue="q.unroutable") == 1

    with DeadLetterService(settings, topology, queue_name="q.unroutable") as service:
        (record,) = service.list()

    assert (record.reason, record.origin) == ("unroutable", "unroutable")
    assert (record.exchange, record.routing_key) == ("tasks", "no.such.key")
    assert wait_depth(channel, 1, queue="q.unroutable") == 1


def test_an_unreachable_postgresql_is_named_with_its_password_masked(
    broker_url, topology, rabbitmq_api_url
):
    settings = load_settings(
        env="test",
        broker_url=broker_url,
        database_url="postgresql+psycopg://postgres:s3cret@127.0.0.1:1/growbin",
    )

    with (
        DeadLetterService(settings, topology) as service,
        pytest.raises(ServiceUnavailableError) as caught,
    ):
        service.sync()

    message = str(caught.value)
    assert "PostgreSQL" in message
    assert "postgres:****@127.0.0.1:1" in message
    assert "s3cret" not in message


def _cli(settings, *args):
    env = {
        **os.environ,
        "GROWBIN_ENV": "test",
        "GROWBIN_BROKER_URL": settings.broker_url.get_secret_value(),
        "GROWBIN_DATABASE_URL": settings.database_url.get_secret_value(),
    }
    return subprocess.run(
        [sys.executable, "-m", "growbin.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_refuses_to_purge_without_yes_and_lists_as_json(
    settings, channel, two_dead_letters
):
    info, expired_id = two_dead_letters

    refused = _cli(settings, "dlq", "purge")
    listed = _cli(settings, "dlq", "list", "--format", "json")

    assert refused.returncode == 1
    assert "--yes" in refused.stderr
    assert wait_depth(channel, 2) == 2
    assert listed.returncode == 0, listed.stderr
    assert {item["task_id"] for item in json.loads(listed.stdout)} == {info.task_id, expired_id}


def test_an_unreachable_broker_is_named_with_its_password_masked(database_url, topology):
    settings = load_settings(
        env="test",
        broker_url="amqp://guest:s3cret@127.0.0.1:1//",
        database_url=database_url,
        broker_connect_timeout=2,
    )

    with (
        DeadLetterService(settings, topology) as service,
        pytest.raises(ServiceUnavailableError) as caught,
    ):
        service.sync()

    assert "RabbitMQ is not reachable at amqp://guest:****@127.0.0.1:1//" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_a_second_command_on_the_same_queue_waits_for_the_first(settings, topology, service):
    with (
        queue_lock(service.engine, service.scope.vhost, DLQ),
        DeadLetterService(settings, topology, lock_timeout=0.5) as second,
        pytest.raises(DeadLetterBusyError, match="another growbin dlq command"),
    ):
        second.sync()

    assert service.sync().in_queue == 0  # the lock was released


def test_browsing_puts_dead_letters_back_in_their_original_order(service, channel):
    sent = [publish_worker_dead_letter(channel).task_id for _ in range(5)]
    assert wait_depth(channel, 5) == 5

    service.list()
    service.list()

    assert wait_depth(channel, 5) == 5
    assert [m.headers["id"] for m in take(channel, DLQ)] == sent


def test_the_scheduled_sync_task_archives_the_queue_without_emptying_it(
    settings, topology, service, channel, two_dead_letters
):
    from growbin.runtime.celery_app import create_app
    from growbin.runtime.registry import registrars
    from growbin.topology.loader import LoadedTopology

    app = create_app(
        settings, LoadedTopology(topology, "test", {}), registrars=registrars(settings)
    )
    try:
        counts = app.tasks["growbin.ops.dlq_sync"]()
    finally:
        app.close()
    assert (counts["in_queue"], counts["new"], counts["dropped"]) == (2, 2, 0)
    assert (counts["superseded"], counts["scans_failed"]) == (0, 0)
    assert wait_depth(channel, 2) == 2
    assert len(service.list()) == 2
