"""Seed 003's patterns over real HTTP: solo, chain, group; results 200 / 202 / 404 / 500."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from tests.integration.api.conftest import api_settings, wait_until, write_api_topology
from tests.integration.api.queue_depth import queue_depth
from tests.integration.api.redis_node import private_redis

from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.topology import loader

pytestmark = pytest.mark.integration


def finished(client, path):
    answer = client.get(path)
    return answer if answer.status_code != 202 else None


def test_solo_add_answers_202_while_it_runs_and_200_with_the_sum(api, start_worker):
    start_worker("storage", api.topology_path, env=api.env)
    alice = api.client(api.key("alice"))

    submitted = alice.get("/solo/add", params={"a": 45, "b": 23, "delay": 1.5})

    assert submitted.status_code == 202
    body = submitted.json()
    assert body["message"] == "FastAPI : a=45, b=23 Published to the queue"
    assert body["result_url"] == f"/result/{body['task_id']}"
    pending = alice.get(body["result_url"])
    assert pending.status_code == 202
    assert pending.json()["status"] in ("PENDING", "STARTED")
    done = wait_until(lambda: finished(alice, body["result_url"]), 60, "the add task")
    assert done.status_code == 200
    assert done.json() == {
        "task_id": body["task_id"],
        "status": "SUCCESS",
        "result": 68,
        "error": None,
    }


def test_solo_add_without_numbers_draws_them_at_random(api, start_worker):
    start_worker("storage", api.topology_path, env=api.env)
    alice = api.client(api.key("alice"))
    body = alice.get("/solo/add").json()
    a, b = (int(part.split("=")[1]) for part in body["message"].split(" Published")[0].split(", "))
    done = wait_until(lambda: finished(alice, body["result_url"]), 60, "the add task")
    assert done.json()["result"] == a + b
    assert 2 <= a + b <= 200


def test_a_chain_answers_with_its_last_tasks_result(api, start_worker):
    start_worker("storage", api.topology_path, env=api.env)
    alice = api.client(api.key("alice"))

    body = alice.get("/solo/chain", params={"a": 3, "b": 4}).json()

    done = wait_until(lambda: finished(alice, body["result_url"]), 60, "the chain")
    assert (done.status_code, done.json()["result"]) == (200, [21, 28])  # (3 + 4) x 3, x 4


def test_a_group_is_saved_so_its_results_and_each_members_can_be_read(api, start_worker):
    start_worker("storage", api.topology_path, env=api.env)
    alice = api.client(api.key("alice"))

    body = alice.get("/solo/group", params={"a": 20, "b": 76}).json()

    assert body["message"] == "Group task submitted : a = 20, b = 76"
    assert body["check_result_url"] == f"/result/group/{body['group_id']}"
    done = wait_until(lambda: finished(alice, body["check_result_url"]), 60, "the group")
    group = done.json()
    assert (done.status_code, group["status"], group["completed"]) == (200, "SUCCESS", 2)
    assert [r["result"] for r in group["results"]] == [96, 1520]
    first = alice.get(f"/result/{body['individual_tasks'][0]}")
    assert (first.status_code, first.json()["result"]) == (200, 96)


def test_unknown_and_other_owners_ids_are_404_and_a_queued_task_is_202(api):
    alice = api.client(api.key("alice"))
    bob = api.client(api.key("bob"))
    # no worker: the task stays queued, and Celery reads it as PENDING like an unknown id
    queued = alice.get("/solo/add", params={"a": 1, "b": 2}).json()["task_id"]
    group = alice.get("/solo/group", params={"a": 1, "b": 2}).json()["group_id"]

    assert alice.get(f"/result/{queued}").status_code == 202
    assert alice.get(f"/result/group/{group}").status_code == 202
    for path in (f"/result/{uuid.uuid4()}", f"/result/group/{uuid.uuid4()}"):
        assert alice.get(path).status_code == 404
    assert bob.get(f"/result/{queued}").status_code == 404
    assert bob.get(f"/result/group/{group}").status_code == 404


def test_a_failed_task_is_500_and_after_its_replay_200_under_the_same_id(api, start_worker):
    """Celery caches the first finished state; the API reads past it, so a replay shows."""
    start_worker("storage", api.topology_path, env=api.env)
    alice = api.client(api.key("alice"))
    admin = api.client(api.key("root", "admin"))
    app = create_app(
        api.settings, loader.load(api.topology_path), registrars=registrars(api.settings)
    )
    store = redis.Redis.from_url(api.settings.redis_url.get_secret_value())
    key = uuid.uuid4().hex
    try:
        task = app.send_task("growbin.testing.flaky", args=(key,))
        api.runtime.tasks.record(api.owner("alice"), [task.id])

        failed = wait_until(lambda: finished(alice, f"/result/{task.id}"), 60, "the failure")
        assert failed.status_code == 500
        assert failed.json()["status"] == "FAILURE"
        assert "TransientTaskError" in failed.json()["error"]

        listed = wait_until(
            lambda: admin.get("/v1/admin/dlq", params={"task": "growbin.testing.flaky"}).json(),
            30,
            "the dead letter",
        )
        assert [d["task_id"] for d in listed] == [task.id]
        shown = admin.get(f"/v1/admin/dlq/{listed[0]['dead_letter_id']}")
        assert shown.status_code == 200
        assert shown.json()["exception_type"].endswith("TransientTaskError")

        store.set(f"fixed:{key}", 1)  # the upstream is healthy again
        replayed = admin.post("/v1/admin/dlq/replay", json={"ids": [listed[0]["dead_letter_id"]]})
        assert replayed.status_code == 200, replayed.text
        assert [r["task_id"] for r in replayed.json()["replayed"]] == [task.id]

        def succeeded():
            answer = alice.get(f"/result/{task.id}")
            return answer if answer.status_code == 200 else None

        assert wait_until(succeeded, 60, "the replay's success").json()["result"] == "ok"
    finally:
        app.close()
        store.close()


@pytest.fixture
def redis_node(tmp_path):
    yield from private_redis(tmp_path)


@pytest.fixture
def persistent_redis_node(tmp_path):
    yield from private_redis(tmp_path, persist=True)


def api_on(node, start_api, broker_api, service_env, database_url, tmp_path):
    """The API (and, through api.env, its workers) with ``node`` as its Redis."""
    topology = write_api_topology(tmp_path / "api-topology.yaml")
    settings = api_settings(service_env, database_url, tmp_path, str(topology), redis_url=node.url)
    api = start_api(topology, broker_api=broker_api, settings=settings)
    api.env["GROWBIN_REDIS_URL"] = node.url
    return api


def test_a_redis_outage_refuses_a_task_at_once_naming_redis_and_queues_nothing(
    start_api, broker_api, redis_node, service_env, database_url, tmp_path
):
    redis_node.start()
    api = api_on(redis_node, start_api, broker_api, service_env, database_url, tmp_path)
    alice = api.client(api.key("alice"))
    broker_url = api.settings.broker_url.get_secret_value()
    assert alice.get("/solo/add", params={"a": 1, "b": 2}).status_code == 202

    redis_node.stop()
    answers = []
    for path in ("/solo/add", "/solo/chain", "/solo/group"):
        started = time.monotonic()
        answers.append((alice.get(path), time.monotonic() - started))

    print("\nRedis down: " + ", ".join(f"{a.status_code} in {s * 1000:.0f} ms" for a, s in answers))
    for answer, seconds in answers:
        assert answer.status_code == 503
        assert answer.json()["reason"] == "result_store_unavailable"
        assert "Redis" in answer.json()["detail"]
        assert seconds < 8
    assert queue_depth(broker_url, "user_input") == 1


def finish_one_add(api, alice):
    body = alice.get("/solo/add", params={"a": 2, "b": 3}).json()
    done = wait_until(lambda: finished(alice, body["result_url"]), 60, "the add task")
    assert (done.status_code, done.json()["result"]) == (200, 5)
    return body["result_url"]


def test_a_result_lost_by_a_redis_restart_without_aof_is_404_saying_why(
    start_api, broker_api, redis_node, start_worker, service_env, database_url, tmp_path
):
    redis_node.start()
    api = api_on(redis_node, start_api, broker_api, service_env, database_url, tmp_path)
    start_worker("storage", api.topology_path, env=api.env)
    alice = api.client(api.key("alice"))
    result_url = finish_one_add(api, alice)

    redis_node.stop()
    redis_node.start()
    lost = alice.get(result_url)

    print(f"\nafter a restart without AOF: {lost.status_code} {lost.json()}")
    assert lost.status_code == 404
    assert lost.json()["reason"] == "result_store_reset"
    assert "appendonly yes" in lost.json()["detail"]


def test_with_aof_a_redis_restart_keeps_issued_ids_and_results(
    start_api, broker_api, persistent_redis_node, start_worker, service_env, database_url, tmp_path
):
    node = persistent_redis_node
    node.start()
    api = api_on(node, start_api, broker_api, service_env, database_url, tmp_path)
    start_worker("storage", api.topology_path, env=api.env)
    alice = api.client(api.key("alice"))
    result_url = finish_one_add(api, alice)

    node.stop()
    node.start()

    kept = alice.get(result_url)
    assert (kept.status_code, kept.json()["result"]) == (200, 5)
