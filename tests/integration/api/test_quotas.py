"""Per-key quotas over real HTTP: rates, tasks in flight, delayed tasks and open streams.

Each over-quota answer is 429 with Retry-After and the RateLimit fields, and nothing is queued;
other keys are not affected; the counts are shared by every API process (Redis).
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from tests.integration.api.conftest import ROOMY_QUOTAS, write_api_topology
from tests.integration.api.queue_depth import queue_depth
from tests.integration.api.test_auth import cli

from growbin.api.config import ApiConfig
from growbin.api.keys import api_secret, create_key
from growbin.api.quotas import overrides
from growbin.scan.samples import sample_bytes

pytestmark = pytest.mark.integration

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


def key_with(api, name: str, *rates: str, scopes=("scans",), **limits) -> str:
    """A key with its own quotas, as `growbin apikey create --rate ...` stores them."""
    with api.runtime.scans.session() as session:
        _, key = create_key(
            session,
            api_secret(api.settings),
            owner=api.owner(name),
            name="quota-test",
            scopes=scopes,
            quotas=overrides(rates, **limits),
        )
    return key


def assert_refused_429(answer: httpx.Response, code: str) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"] == code
    assert int(answer.headers["Retry-After"]) >= 1
    for name in RATE_HEADERS:
        assert name in answer.headers, name
    assert answer.headers["RateLimit-Remaining"] == "0"


def depth(api) -> int:
    return queue_depth(api.env["GROWBIN_BROKER_URL"], "user_input")


def test_a_key_over_its_rate_gets_429_with_retry_after_and_ratelimit_headers(api):
    fast = api.client(key_with(api, "fast", "5/m", burst=3))
    other = api.client(api.key("other"))

    answers = [fast.get("/v1/scans") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert answers[0].headers["RateLimit-Remaining"] == "2"
    assert answers[2].headers["RateLimit-Remaining"] == "0"
    assert answers[0].headers["RateLimit-Policy"] == '5;w=60;burst=3;name="key"'
    refused = answers[3]
    assert_refused_429(refused, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 13  # one request per 12 s
    assert "--rate" in refused.json()["detail"]
    # another key is not slowed down by the first one's quota
    assert other.get("/v1/scans").status_code == 200


def test_a_refused_submission_queues_nothing(api):
    slow = api.client(key_with(api, "slow", "submit=2/m", burst=2))
    before = depth(api)

    answers = [slow.get("/solo/add", params={"a": 1, "b": 2}) for _ in range(3)]

    assert [a.status_code for a in answers] == [202, 202, 429]
    assert_refused_429(answers[2], "rate_limited")
    assert answers[2].headers["RateLimit-Policy"].endswith('name="submit"')
    assert depth(api) == before + 2
    # the submit family's rate does not hold back reads
    assert slow.get("/v1/scans").status_code == 200


def test_a_key_with_its_tasks_in_flight_at_the_cap_is_refused_until_one_finishes(api, start_worker):
    capped = api.client(key_with(api, "capped", in_flight=3))
    before = depth(api)

    accepted = [capped.get("/solo/add", params={"a": i, "b": 1}) for i in range(3)]
    refused = capped.get("/solo/add", params={"a": 9, "b": 9})
    chain = capped.get("/solo/chain", params={"a": 1, "b": 1})

    assert [a.status_code for a in accepted] == [202] * 3
    assert_refused_429(refused, "too_many_in_flight")
    assert_refused_429(chain, "too_many_in_flight")
    assert "3 scans and tasks queued or running" in refused.json()["detail"]
    assert depth(api) == before + 3  # nothing of the refused ones was queued
    # a refused id was never issued
    assert capped.get("/result/anything-1").status_code == 404

    start_worker("storage", api.topology_path, env=api.env)
    for answer in accepted:
        url = answer.json()["result_url"]
        deadline = time.monotonic() + 60
        while capped.get(url).status_code != 200:
            assert time.monotonic() < deadline, "the add tasks did not finish"
            time.sleep(0.2)
    # finished tasks give their slots back
    assert capped.get("/solo/add", params={"a": 1, "b": 1}).status_code == 202


def test_scans_in_flight_count_against_the_cap_and_a_refused_one_stores_nothing(api):
    capped = api.client(key_with(api, "scanner", in_flight=2))
    photo = {"image": ("can.jpg", sample_bytes("can.jpg"))}

    answers = [capped.post("/v1/scans", files=photo) for _ in range(3)]

    assert [a.status_code for a in answers] == [202, 202, 429]
    assert_refused_429(answers[2], "too_many_in_flight")
    assert len(capped.get("/v1/scans").json()["items"]) == 2


def test_example_tasks_with_a_delay_have_their_own_small_cap_and_a_short_delay(api):
    alice = api.client(key_with(api, "sleeper", delayed_in_flight=2))

    delayed = [alice.get("/solo/add", params={"a": 1, "b": 1, "delay": 5}) for _ in range(3)]
    instant = alice.get("/solo/add", params={"a": 1, "b": 1})
    too_long = alice.get("/solo/add", params={"a": 1, "b": 1, "delay": 30})

    assert [a.status_code for a in delayed] == [202, 202, 429]
    assert_refused_429(delayed[2], "too_many_in_flight")
    assert "with a delay" in delayed[2].json()["detail"]
    assert instant.status_code == 202
    assert too_long.status_code == 422


def test_one_key_sleeping_tasks_do_not_hold_up_another_keys_add(api, start_worker):
    """The table's row: 16 adds with a delay from one key, then one instant add from another."""
    start_worker("storage", api.topology_path, env=api.env)
    greedy = api.client(key_with(api, "greedy", in_flight=30))
    polite = api.client(api.key("polite"))
    # the worker is consuming before anything is measured
    warm = polite.get("/solo/add", params={"a": 0, "b": 0}).json()["result_url"]
    deadline = time.monotonic() + 90
    while polite.get(warm).status_code != 200:
        assert time.monotonic() < deadline, "the worker never ran a task"
        time.sleep(0.2)

    greedy_answers = [
        greedy.get("/solo/add", params={"a": 1, "b": 1, "delay": 30}) for _ in range(16)
    ]
    greedy_answers += [
        greedy.get("/solo/add", params={"a": 1, "b": 1, "delay": 5}) for _ in range(16)
    ]
    started = time.monotonic()
    submitted = polite.get("/solo/add", params={"a": 2, "b": 3})
    assert submitted.status_code == 202
    url = submitted.json()["result_url"]
    while polite.get(url).status_code != 200:
        assert time.monotonic() - started < 60, "the polite add never finished"
        time.sleep(0.1)
    seconds = time.monotonic() - started
    codes = [a.status_code for a in greedy_answers]
    print(
        f"\ngreedy key: {codes.count(202)} accepted, {codes.count(429)} refused (429), "
        f"{codes.count(422)} refused (422, delay > 5 s); the other key's add took {seconds:.2f} s"
    )
    assert codes.count(202) == 2  # its delayed tasks in flight: 2
    assert seconds < 5.5  # at worst it waited for one capped delay, never 118 s


def test_open_event_streams_are_capped_per_key(api):
    watcher = key_with(api, "watcher", streams=2)
    client = api.client(watcher)
    scan = client.post("/v1/scans", files={"image": ("can.jpg", sample_bytes("can.jpg"))})
    assert scan.status_code == 202
    events = scan.json()["events_url"]

    opened: list[httpx.Response] = []
    streams = [httpx.Client(base_url=api.url, headers=client.headers, timeout=30) for _ in range(2)]
    try:
        for stream_client in streams:
            response = stream_client.send(stream_client.build_request("GET", events), stream=True)
            assert response.status_code == 200
            opened.append(response)
        third = client.get(events)
        assert_refused_429(third, "too_many_streams")
        assert "2 event streams open" in third.json()["detail"]
        # another key may still watch its own scans
        other = api.client(api.key("other-watcher"))
        assert other.get("/v1/scans").status_code == 200
    finally:
        for response in opened:
            response.close()
        for stream_client in streams:
            stream_client.close()

    # a closed stream gives its slot back (the server sees it at its next heartbeat)
    deadline = time.monotonic() + 30
    while True:
        with client.stream("GET", events) as again:
            if again.status_code == 200:
                break
        assert time.monotonic() < deadline, "closed streams never gave their slots back"
        time.sleep(0.5)


def test_quotas_are_shared_by_every_api_process(start_api, broker_api, tmp_path):
    topology = write_api_topology(tmp_path / "t.yaml")
    config = ApiConfig(**ROOMY_QUOTAS)
    first = start_api(topology, broker_api=broker_api, config=config)
    second = start_api(topology, config=config)
    key = key_with(first, "roamer", "6/m", burst=4)
    one, two = first.client(key), second.client(key)

    codes = [c.get("/v1/scans").status_code for c in (one, two, one, two, one, two)]

    assert codes == [200, 200, 200, 200, 429, 429]


def test_apikey_create_stores_the_keys_own_quotas(api):
    created = cli(
        api,
        "create",
        "--owner",
        api.owner("ivan"),
        "--name",
        "batch",
        "--rate",
        "2/m",
        "--rate",
        "read=1/m",
        "--burst",
        "2",
        "--in-flight",
        "100",
        "--format",
        "json",
    )
    assert created.exit_code == 0, created.output
    made = json.loads(created.output)
    assert made["quotas"] == {
        "rate": "2/m",
        "families": {"read": "1/m"},
        "burst": 2,
        "in_flight": 100,
    }
    client = api.client(made["key"])
    assert [client.get("/v1/scans").status_code for _ in range(2)] == [200, 429]

    bad = cli(api, "create", "--owner", "x", "--name", "y", "--rate", "lots")
    assert bad.exit_code != 0
    assert "is not a rate" in bad.output


def test_quotas_hold_under_parallel_requests_from_one_key(api):
    key = key_with(api, "parallel", "10/m", burst=10)
    codes: list[int] = []

    def hit() -> None:
        with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {key}"}) as c:
            codes.append(c.get("/v1/scans", timeout=30).status_code)

    threads = [threading.Thread(target=hit) for _ in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(200) == 10
    assert codes.count(429) == 15
