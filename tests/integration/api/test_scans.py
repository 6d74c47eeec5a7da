"""Scans over real HTTP: submit, follow as events, read, list; owners kept apart; bad uploads."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from PIL import Image
from tests.integration.api.conftest import api_settings, wait_until, write_api_topology
from tests.integration.api.helpers import LocalFiles, read_events
from tests.integration.api.queue_depth import queue_depth
from tests.integration.api.redis_node import private_redis

from growbin.scan.samples import load_manifest, sample_bytes

pytestmark = pytest.mark.integration

STEPS = ["preprocess", "classify", "rules", "guidance", "save"]


def start_pipeline_workers(api, start_worker):
    for profile in ("storage", "ai"):
        start_worker(
            profile,
            api.topology_path,
            "--pool=threads",
            "--concurrency=2",
            env=api.env,
        )


def post_photo(client: httpx.Client, name: str = "can.jpg", hint: str | None = None):
    data = {"hint": hint} if hint else {}
    return client.post("/v1/scans", files={"image": (name, sample_bytes(name))}, data=data)


def test_a_photo_posted_as_multipart_is_followed_over_sse_to_its_result(api, start_worker):
    start_pipeline_workers(api, start_worker)
    alice = api.client(api.key("alice"))
    hint = load_manifest()["can.jpg"]["hint"]

    posted = post_photo(alice, "can.jpg", hint=hint)

    assert posted.status_code == 202, posted.text
    accepted = posted.json()
    assert accepted["status_url"] == f"/v1/scans/{accepted['scan_id']}"
    assert accepted["events_url"] == f"/v1/scans/{accepted['scan_id']}/events"
    events = read_events(alice, accepted["events_url"])
    names = [name for name, _ in events if name != "comment"]
    assert names[0] == "snapshot"
    assert names[-1] == "end"
    done_steps = [d["step"] for n, d in events if n == "step" and d["state"] == "done"]
    # a fast step may go from pending to done between two polls; every one is seen done
    assert sorted(done_steps) == sorted(STEPS)
    final = events[-1][1]
    assert final["status"] == "done"

    read = alice.get(accepted["status_url"])
    assert read.status_code == 200
    scan = read.json()
    assert scan == final
    assert scan["result"]["item"] == "can"
    assert scan["result"]["guidance"]
    assert all(scan["steps"][s]["state"] == "done" for s in STEPS)


def test_a_photo_given_by_url_is_fetched_and_scanned(api, start_worker):
    start_pipeline_workers(api, start_worker)
    alice = api.client(api.key("alice"))
    with LocalFiles({"/photos/bottle.png": sample_bytes("pet_bottle.png")}) as files:
        posted = alice.post(
            "/v1/scans", json={"image_url": files.url("/photos/bottle.png"), "hint": "페트병"}
        )
        assert posted.status_code == 202, posted.text
        scan_id = posted.json()["scan_id"]

        deadline = time.monotonic() + 120
        while (scan := alice.get(f"/v1/scans/{scan_id}").json())["status"] not in (
            "done",
            "failed",
        ):
            assert time.monotonic() < deadline, scan
            time.sleep(0.3)
        assert scan["status"] == "done"
        assert scan["result"]["item"] == "pet_bottle"

        for url, why in (
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            ("file:///etc/passwd", "scheme"),
            ("http://localhost:1/x.png", "not one the API fetches from"),
        ):
            refused = alice.post("/v1/scans", json={"image_url": url})
            assert refused.status_code == 422, (url, refused.text)
            assert refused.json()["error"] == "url_refused"
            assert why in refused.json()["detail"]


def test_another_owner_can_neither_read_nor_list_nor_stream_a_scan(api):
    alice = api.client(api.key("alice"))
    bob = api.client(api.key("bob"))
    scan_id = post_photo(alice).json()["scan_id"]
    unknown = "0" * 32

    assert alice.get(f"/v1/scans/{scan_id}").status_code == 200
    for path in (f"/v1/scans/{scan_id}", f"/v1/scans/{scan_id}/events"):
        theirs, nobodys = bob.get(path), bob.get(path.replace(scan_id, unknown))
        assert theirs.status_code == nobodys.status_code == 404
        assert theirs.json() == nobodys.json()  # nothing tells "exists" from "does not"
    assert [s["id"] for s in alice.get("/v1/scans").json()["items"]] == [scan_id]
    assert bob.get("/v1/scans").json()["items"] == []


def test_scans_are_listed_newest_first_a_page_at_a_time(api):
    alice = api.client(api.key("alice"))
    ids = [post_photo(alice, name).json()["scan_id"] for name in ("can.jpg", "cardboard.jpg")]
    ids.append(post_photo(alice, "glass_bottle.jpg").json()["scan_id"])

    first = alice.get("/v1/scans", params={"limit": 2}).json()
    second = alice.get("/v1/scans", params={"limit": 2, "offset": 2}).json()

    assert [s["id"] for s in first["items"]] == ids[::-1][:2]
    assert first["next_offset"] == 2
    assert [s["id"] for s in second["items"]] == ids[:1]
    assert second["next_offset"] is None
    assert alice.get("/v1/scans", params={"limit": 0}).status_code == 422


def gif_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="GIF")
    return buf.getvalue()


def test_bad_uploads_get_their_status_and_code_and_nothing_is_recorded(api):
    carol = api.client(api.key("carol"))
    cases = [
        ("notes.jpg", b"shopping list: milk, eggs\n" * 20, 415, "not_an_image"),
        ("anim.gif", gif_bytes(), 415, "unsupported_format"),
        ("cut.jpg", sample_bytes("can.jpg")[:2000], 422, "truncated"),
        ("empty.jpg", b"", 422, "empty"),
        # under the body cap (10 MB + 256 KB), over intake's 10 MB: refused by the image check
        ("big.jpg", b"\xff\xd8\xff\xe0" + b"\0" * (10 * 1024 * 1024), 413, "too_large"),
    ]
    for name, data, status, code in cases:
        answer = carol.post("/v1/scans", files={"image": (name, data)})
        assert (answer.status_code, answer.json()["error"]) == (status, code), name
        assert answer.json()["detail"]

    no_file = carol.post("/v1/scans", data={"hint": "can"}, files={"other": ("x", b"x")})
    assert (no_file.status_code, no_file.json()["error"]) == (422, "missing_image")
    plain = carol.post("/v1/scans", content=b"hello", headers={"Content-Type": "text/plain"})
    assert (plain.status_code, plain.json()["error"]) == (415, "unsupported_media_type")
    bad_json = carol.post("/v1/scans", json={"image_url": 5})
    assert (bad_json.status_code, bad_json.json()["error"]) == (422, "invalid_request")
    long_hint = carol.post(
        "/v1/scans", files={"image": ("can.jpg", sample_bytes("can.jpg"))}, data={"hint": "x" * 101}
    )
    assert long_hint.status_code == 422
    assert carol.get("/v1/scans").json()["items"] == []


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(api):
    dave = api.client(api.key("dave"))
    twelve_mb = b"\xff\xd8\xff\xe0" + b"\0" * (12 * 1024 * 1024)

    started = time.monotonic()
    declared = dave.post("/v1/scans", files={"image": ("big.jpg", twelve_mb)})
    declared_seconds = time.monotonic() - started

    def chunks():  # a well-formed multipart body, sent without a Content-Length
        yield (
            b'--b0undary\r\nContent-Disposition: form-data; name="image"; '
            b'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0'
        )
        for _ in range(12):
            yield b"\0" * (1024 * 1024)
        yield b"\r\n--b0undary--\r\n"

    chunked = dave.post(
        "/v1/scans",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    print(f"\n413 for a declared 12 MB body after {declared_seconds * 1000:.0f} ms")
    for answer in (declared, chunked):
        assert answer.status_code == 413
        assert answer.json()["error"] == "too_large"
    assert dave.get("/v1/scans").json()["items"] == []


@pytest.fixture
def redis_node(tmp_path):
    yield from private_redis(tmp_path)


def test_a_redis_outage_refuses_a_scan_at_once_naming_redis_and_queues_nothing(
    start_api, broker_api, redis_node, service_env, database_url, tmp_path
):
    redis_node.start()
    topology = write_api_topology(tmp_path / "api-topology.yaml")
    settings = api_settings(
        service_env, database_url, tmp_path, str(topology), redis_url=redis_node.url
    )
    api = start_api(topology, broker_api=broker_api, settings=settings)
    alice = api.client(api.key("alice"))
    broker_url = api.settings.broker_url.get_secret_value()
    assert post_photo(alice).status_code == 202

    redis_node.stop()
    started = time.monotonic()
    refused = post_photo(alice)
    seconds = time.monotonic() - started
    depth_while_down = queue_depth(broker_url, "user_input")
    redis_node.start()
    back = post_photo(alice)

    body = refused.json()
    print(f"\nRedis down: {refused.status_code} after {seconds * 1000:.0f} ms, body {body}")
    assert refused.status_code == 503
    assert (body["error"], body["reason"]) == ("not_accepted", "result_store_unavailable")
    assert "Redis" in body["detail"] and "broker" not in body["detail"]
    assert refused.headers["retry-after"]
    # the publish timeouts bound it (2 s to connect): not Celery's ~19 s of reconnects
    assert seconds < 8
    assert alice.get(f"/v1/scans/{body['scan_id']}").json()["status"] == "refused"
    assert depth_while_down == 1
    assert back.status_code == 202, back.text
    assert wait_until(lambda: queue_depth(broker_url, "user_input") == 2, 10, "the depth")
