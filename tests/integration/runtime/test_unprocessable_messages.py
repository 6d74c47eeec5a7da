"""Messages that are not valid Celery tasks end in q.dlq with a reason, never acked and gone.

Each case publishes one raw message with kombu to a real worker of the production preset, then
reads q.dlq: the original body, content type and headers are there, with an ``x-growbin-death``
header that names the reason and the exception. The worker keeps running normal tasks after.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from kombu import Connection, Producer

from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.service import DeadLetterService
from growbin.ops.deadletters.view import detail
from growbin.runtime.celery_app import create_app
from growbin.runtime.deadletter import DEATH_HEADER
from growbin.runtime.registry import ALL_TASKS
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

TOPOLOGY = "production"


@dataclass(frozen=True)
class Case:
    """One raw message, and what its dead letter must say."""

    name: str
    body: bytes
    content_type: str
    reason: str
    exception: str  # a part of the exception type
    task: str | None = "growbin.demo.add"  # Celery protocol-2 headers for this task; None: none
    content_encoding: str = "utf-8"
    routing_key: str = "api.demo"
    profile: str = "api"
    queue: str = "q.api"
    drop_headers: tuple[str, ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = ()


EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}

CASES = [
    Case(
        "a body that is not JSON, with Celery headers",
        b'{"not": json,,',
        "application/json",
        reason="undecodable",
        exception="DecodeError",
    ),
    Case(
        "a text/plain message without Celery headers",
        b"hello\x00, is this the waste-sorting service?",  # NUL: PostgreSQL text refuses it
        "text/plain",
        reason="malformed",
        exception="InvalidTaskError",
        task=None,
    ),
    Case(
        "a pickled task",
        pickle.dumps(((2, 3), {}, EMBED)),
        "application/x-python-serialize",
        reason="content_disallowed",
        exception="ContentDisallowed",
        content_encoding="binary",
    ),
    Case(
        "a YAML task",
        b"- [2, 3]\n- {}\n- {callbacks: null, errbacks: null, chain: null, chord: null}\n",
        "application/x-yaml",
        reason="content_disallowed",
        exception="ContentDisallowed",
    ),
    Case(
        "a task name no worker knows",
        b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
        "application/json",
        reason="unregistered",
        exception="NotRegistered",
        task="growbin.demo.no_such_task",
    ),
    Case(
        "a JSON body of the wrong shape",
        b"[1]",
        "application/json",
        reason="malformed",
        exception="InvalidTaskError",
    ),
    Case(
        "a JSON object without Celery headers",
        b'{"item": "bottle"}',
        "application/json",
        reason="malformed",
        exception="InvalidTaskError",
        task=None,
    ),
    Case(
        "a Celery message without a task id",
        b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
        "application/json",
        reason="malformed",
        exception="InvalidTaskError",
        drop_headers=("id",),
    ),
    Case(
        # passes the checks; Celery's own on_invalid_task finds it (the backstop path)
        "a Celery message with an unreadable eta",
        b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
        "application/json",
        reason="malformed",
        exception="InvalidTaskError",
        extra_headers=(("eta", "next tuesday"),),
    ),
    Case(
        "a text/plain message on the ai queue",
        b"preprocess this please",
        "text/plain",
        reason="malformed",
        exception="InvalidTaskError",
        task=None,
        routing_key="ai.preprocess",
        profile="ai",
        queue="q.ai",
    ),
]


@pytest.fixture
def settings(broker_api, temp_vhost, service_env, database_url):
    loaded = loader.load(TOPOLOGY)
    apply(loaded.topology.model_copy(update={"vhost": temp_vhost}), broker_api)
    return load_settings(
        env="test",
        broker_url=service_env["GROWBIN_BROKER_URL"],
        redis_url=service_env["GROWBIN_REDIS_URL"],
        database_url=database_url,
        topology=TOPOLOGY,
    )


@pytest.fixture
def start(start_worker, settings):
    """Start a worker of the preset whose journal syncs to the test database."""

    def run(profile: str):
        worker = start_worker(
            profile,
            TOPOLOGY,
            env={"GROWBIN_DATABASE_URL": settings.database_url.get_secret_value()},
        )
        worker.wait_for_log("ready", timeout=60)
        return worker

    return run


@pytest.fixture
def app(settings):
    celery_app = create_app(settings, loader.load(TOPOLOGY), registrars=ALL_TASKS)
    yield celery_app
    celery_app.close()


def celery_headers(app, task: str) -> dict[str, Any]:
    """The protocol-2 headers Celery itself would send for ``task``."""
    message = app.amqp.create_task_message(str(uuid.uuid4()), task, (2, 3), {})
    return dict(message.headers)


def publish(settings, app, case: Case) -> dict[str, Any]:
    """Publish the case's raw message; return the headers it was sent with."""
    headers: dict[str, Any] = celery_headers(app, case.task) if case.task else {}
    for name in case.drop_headers:
        headers.pop(name, None)
    headers.update(case.extra_headers)
    headers["x-test-marker"] = uuid.uuid4().hex
    with Connection(settings.broker_url.get_secret_value()) as conn:
        producer = Producer(conn.default_channel)
        producer.publish(
            case.body,
            exchange="tasks",
            routing_key=case.routing_key,
            content_type=case.content_type,
            content_encoding=case.content_encoding,
            headers=headers,
            delivery_mode=2,
        )
    return headers


@dataclass(frozen=True)
class Taken:
    body: bytes
    properties: dict[str, Any]
    headers: dict[str, Any]


def take_dead_letters(settings, expect: int, timeout: float = 60.0) -> list[Taken]:
    """Take ``expect`` messages out of q.dlq, raw bytes and all, waiting for them."""
    found: list[Taken] = []
    deadline = time.monotonic() + timeout
    with Connection(settings.broker_url.get_secret_value()) as conn:
        channel = conn.channel()
        channel.auto_decode = False  # keep the body as the bytes that were published
        while len(found) < expect and time.monotonic() < deadline:
            message = channel.basic_get("q.dlq", no_ack=True)
            if message is None:
                time.sleep(0.2)
                continue
            properties = dict(message.properties)
            headers = dict(properties.pop("application_headers", None) or {})
            found.append(Taken(bytes(message.body), properties, headers))
    return found


def queue_depth(settings, queue: str) -> tuple[int, int]:
    """(ready, consumers) of a queue, read with a passive declare (no stats lag)."""
    with Connection(settings.broker_url.get_secret_value()) as conn:
        ok = conn.default_channel.queue_declare(queue=queue, passive=True)
        return int(ok.message_count), int(ok.consumer_count)


def wait_until(probe, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.3)
    return value


@pytest.mark.parametrize("case", CASES, ids=[c.name.replace(" ", "-") for c in CASES])
def test_a_message_that_is_not_a_valid_task_is_dead_lettered_with_its_reason(
    settings, app, start, case
):
    worker = start(case.profile)
    sent = publish(settings, app, case)

    taken = take_dead_letters(settings, expect=1)

    assert taken, f"nothing reached q.dlq; worker output:\n{worker.output()[-3000:]}"
    [letter] = taken
    death = letter.headers[DEATH_HEADER]
    assert death["reason"] == case.reason
    assert case.exception in death["exception_type"]
    assert death["exception_message"]
    assert (death["queue"], death["exchange"], death["routing_key"]) == (
        case.queue,
        "tasks",
        case.routing_key,
    )
    assert death["retryable"] is False
    assert letter.body == case.body
    assert letter.properties["content_type"] == case.content_type
    assert letter.headers["x-test-marker"] == sent["x-test-marker"]
    if case.task:
        assert letter.headers["task"] == case.task
        assert death["task"] == case.task
    # acked only after the dead letter was confirmed: nothing left behind, unacked or ready
    assert wait_until(lambda: queue_depth(settings, case.queue) == (0, 1), 30, "an empty queue")

    if case.profile == "api":
        assert app.send_task("growbin.demo.add", args=(20, 22)).get(timeout=60) == 42
    assert worker.proc.poll() is None


def test_the_archive_records_each_reason_and_replay_refuses_what_cannot_run(settings, app, start):
    api_cases = [c for c in CASES if c.profile == "api"]
    worker = start("api")
    markers = {publish(settings, app, c)["x-test-marker"]: c for c in api_cases}
    assert app.send_task("growbin.demo.add", args=(1, 2)).get(timeout=60) == 3

    with DeadLetterService(settings, loader.load(TOPOLOGY).topology) as service:
        wait_until(lambda: service.sync().in_queue >= len(api_cases), 60, "every case in q.dlq")
        records = service.list(DeadLetterFilter())
        assert len(records) == len(api_cases)
        by_case = {markers[r.headers["x-test-marker"]].name: r for r in records}
        assert set(by_case) == {c.name for c in api_cases}

        for case in api_cases:
            record = by_case[case.name]
            assert record.origin == "growbin"
            assert record.reason == case.reason
            assert case.exception in record.exception_type
            assert record.exception_message
            assert record.queue == "q.api" and record.routing_key == "api.demo"
            assert record.content_type == case.content_type
            shown = detail(service.show(record.dead_letter_id))
            assert shown["reason"] == case.reason and shown["exception_message"]
            assert shown["body"]

        pickled = by_case["a pickled task"]
        assert pickled.body_base64 is True  # not UTF-8: kept as base64, byte for byte

        by_reason = service.list(DeadLetterFilter.from_options(reason="undecodable"))
        assert [r.dead_letter_id for r in by_reason] == [
            by_case["a body that is not JSON, with Celery headers"].dead_letter_id
        ]

        not_a_task = by_case["a text/plain message without Celery headers"]
        report = service.replay([not_a_task.dead_letter_id])
        assert report.replayed == []
        [(skipped_id, why)] = report.skipped
        assert skipped_id == not_a_task.dead_letter_id
        assert "malformed" in why and "cannot run" in why

        # what an operator sees
        listed = cli(settings, "dlq", "list")
        assert listed.returncode == 0, listed.stderr
        for reason in ("undecodable", "content_disallowed", "unregistered", "malformed"):
            assert reason in listed.stdout
        shown = cli(settings, "dlq", "show", not_a_task.dead_letter_id)
        assert shown.returncode == 0, shown.stderr
        assert "malformed" in shown.stdout and "InvalidTaskError" in shown.stdout
        assert "is this the waste-sorting service" not in shown.stdout  # a NUL: kept as base64
        refused = cli(settings, "dlq", "replay", not_a_task.dead_letter_id)
        assert refused.returncode == 1
        assert "cannot run" in " ".join(refused.stderr.split())

        # an unregistered task is a well-formed task: it may run once a worker knows it
        unknown = by_case["a task name no worker knows"]
        report = service.replay([unknown.dead_letter_id])
        assert [item.dead_letter_id for item in report.replayed] == [unknown.dead_letter_id]

    assert worker.proc.poll() is None


def test_replaying_every_dead_letter_skips_those_that_cannot_run(settings, app, start):
    worker = start("api")
    undecodable = CASES[0]
    publish(settings, app, undecodable)
    with DeadLetterService(settings, loader.load(TOPOLOGY).topology) as service:
        wait_until(lambda: service.sync().in_queue >= 1, 60, "the dead letter")
        report = service.replay(replay_all=True)
        assert report.replayed == []
        assert len(report.skipped) == 1 and "undecodable" in report.skipped[0][1]
        # still open and still in the queue: nothing was published or acked
        assert [r.state for r in service.list()] == ["queued"]
    assert worker.proc.poll() is None


def cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GROWBIN_ENV": "test",
        "GROWBIN_BROKER_URL": settings.broker_url.get_secret_value(),
        "GROWBIN_DATABASE_URL": settings.database_url.get_secret_value(),
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "growbin.cli", "--topology", TOPOLOGY, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
