"""The scan pipeline on real RabbitMQ, Redis and PostgreSQL, with the fake OpenAI server.

Each test prints what it measured; `pytest -s` shows the report.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from growbin.fakes.openai_server import FakeOpenAI
from growbin.runtime.celery_app import create_app
from growbin.runtime.kv import RedisKV
from growbin.runtime.registry import registrars
from growbin.scan.context import ScanContext, attach_scan_context
from growbin.scan.images import ImageRejected
from growbin.scan.intake import submit_scan
from growbin.scan.pipeline import CACHE_HITS
from growbin.scan.records import Scan
from growbin.scan.samples import load_manifest, sample_bytes
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

pytestmark = pytest.mark.integration

PIPELINE_ROUTES = {
    "preprocess": "input.preprocess",
    "classify": "vision.classify",
    "rules": "rules.lookup",
    "guidance": "response.generate",
    "save": "input.save",
}


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def clean_redis(redis_url):
    client = redis.Redis.from_url(redis_url)
    for pattern in ("growbin:cache:*", "growbin:stats:*", "growbin:scan:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    yield client
    client.close()


def platform(topology_name, broker_api, temp_vhost, service_env, database_url, tmp_path, fake):
    """Apply the topology; return (env for workers, app, scan context) on the test's services."""
    loaded = loader.load(topology_name)
    apply(loaded.topology.model_copy(update={"vhost": temp_vhost}), broker_api)
    env = {
        **service_env,
        "GROWBIN_DATABASE_URL": database_url,
        "GROWBIN_IMAGE_DIR": str(tmp_path / "images"),
        "GROWBIN_PROVIDERS": "openai",
        "GROWBIN_OPENAI_BASE_URL": fake.base_url,
        "GROWBIN_OPENAI_API_KEY": fake.api_key,
        "GROWBIN_OPENAI_TIMEOUT": "5",
        "GROWBIN_TOPOLOGY": str(topology_name),
    }
    settings = load_settings(
        env="test",
        broker_url=SecretStr(env["GROWBIN_BROKER_URL"]),
        redis_url=SecretStr(env["GROWBIN_REDIS_URL"]),
        database_url=SecretStr(database_url),
        image_dir=env["GROWBIN_IMAGE_DIR"],
        providers="openai",
        openai_base_url=fake.base_url,
        openai_api_key=SecretStr(fake.api_key),
        topology=str(topology_name),
    )
    app = create_app(settings, loaded, registrars=registrars(settings))
    ctx = ScanContext.build(settings, kv=RedisKV(settings.redis_url.get_secret_value()))
    attach_scan_context(app, ctx)
    return env, app, ctx


def wait_scans(ctx, scan_ids, timeout=120.0, until=frozenset({"done", "failed"})):
    deadline = time.monotonic() + timeout
    while True:
        with ctx.session() as session:
            rows = {i: session.get(Scan, i).as_dict() for i in scan_ids}
        if all(r["status"] in until for r in rows.values()) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def vision_calls(fake):
    return sum(1 for c in fake.calls if c.model == "gpt-5")


def test_twenty_scans_run_the_whole_pipeline_with_cache_hits_and_no_duplicate_calls(
    broker_api,
    temp_vhost,
    service_env,
    database_url,
    tmp_path,
    fake_openai,
    clean_redis,
    start_worker,
):
    env, app, ctx = platform(
        "pipeline", broker_api, temp_vhost, service_env, database_url, tmp_path, fake_openai
    )
    start_worker("storage", "pipeline", env=env)
    start_worker("ai", "pipeline", env=env)
    manifest = list(load_manifest())
    try:
        first = [
            submit_scan(app, ctx, sample_bytes(n), filename=n, owner="t").scan_id for n in manifest
        ]
        first_rows = wait_scans(ctx, first)
        repeats = [manifest[i % len(manifest)] for i in range(20 - len(manifest))]
        second = [
            submit_scan(app, ctx, sample_bytes(n), filename=n, owner="t").scan_id for n in repeats
        ]
        rows = {**first_rows, **wait_scans(ctx, second)}
        calls_before = (vision_calls(fake_openai), fake_openai.call_count)

        assert [r["status"] for r in rows.values()] == ["done"] * 20
        for row in rows.values():
            for step, key in PIPELINE_ROUTES.items():
                assert row["steps"][step]["state"] == "done"
                assert row["steps"][step]["routing_key"] == key
            assert row["result"]["guidance"]
            assert row["result"]["providers"]["vision"]["provider"] == "openai"
        hits = int(clean_redis.get(CACHE_HITS) or 0)
        cached_steps = sum(1 for r in rows.values() if r["steps"]["classify"].get("cached"))
        print(
            f"\npipeline: 20 scans done; vision calls {calls_before[0]}, "
            f"cache hits {hits} (steps marked cached {cached_steps}), "
            f"provider calls in all {calls_before[1]}"
        )
        assert calls_before[0] == len(manifest)
        assert hits == cached_steps == 20 - len(manifest)

        # A redelivered step (here: every step of a finished scan published again) returns its
        # kept output: no provider call, no second write.
        scan_id = second[0]
        with ctx.session() as session:
            before = session.get(Scan, scan_id).as_dict()
        state = {"scan_id": scan_id}
        for step in PIPELINE_ROUTES:
            # steps store no result unless asked (pipeline.register)
            sent = app.send_task(f"growbin.scan.{step}", args=(state,), ignore_result=False)
            state = sent.get(timeout=30)
        with ctx.session() as session:
            after = session.get(Scan, scan_id).as_dict()
        assert (vision_calls(fake_openai), fake_openai.call_count) == calls_before
        assert after == before
    finally:
        app.close()


def test_a_failing_provider_dead_letters_external_work_while_the_fast_lane_keeps_its_latency(
    broker_api,
    temp_vhost,
    service_env,
    database_url,
    tmp_path,
    fake_openai,
    clean_redis,
    start_worker,
):
    text = loader.preset_path("slo").read_text()
    quick = text.replace(
        "retry: {max_retries: 3, backoff_base: 2, backoff_max: 120}",
        "retry: {max_retries: 2, backoff_base: 0.2, backoff_max: 1}",
    )
    assert quick != text
    path = tmp_path / "slo-quick-retries.yaml"
    path.write_text(quick)
    env, app, ctx = platform(
        path, broker_api, temp_vhost, service_env, database_url, tmp_path, fake_openai
    )
    start_worker("fast", str(path), "--concurrency=2", env=env)
    start_worker("external", str(path), "--concurrency=4", env=env)

    def fast_lane(n=30):
        latencies = []
        for i in range(n):
            started = time.monotonic()
            assert app.send_task("growbin.demo.add", args=(i, 1)).get(timeout=30) == i + 1
            latencies.append(time.monotonic() - started)
            time.sleep(max(0.0, 0.1 - latencies[-1]))  # about 10 per second
        return latencies

    try:
        fast_lane(5)  # warm up
        idle = fast_lane()
        fake_openai.mode = "error500"
        fake_openai.latency = 0.5  # a failing provider that also answers slowly
        names = list(load_manifest())
        scans = [
            submit_scan(app, ctx, sample_bytes(n), filename=n, owner="t").scan_id for n in names * 2
        ]
        # Preprocessing runs on the fast lane itself (CPU work, seconds for 12 photos on 2
        # cores): let it finish, so what is measured is the effect of the external outage.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with ctx.session() as session:
                steps = [session.get(Scan, i).steps for i in scans]
            if all(s.get("preprocess", {}).get("state") == "done" for s in steps):
                break
            time.sleep(0.1)
        during = fast_lane()
        with ctx.session() as session:
            still_failing = sum(session.get(Scan, i).status == "running" for i in scans)
        rows = wait_scans(ctx, scans, timeout=90)
        p = lambda xs, q: statistics.quantiles(xs, n=100)[q - 1]  # noqa: E731
        print(
            f"\nisolation: fast lane p50/p99 idle {p(idle, 50) * 1000:.0f}/{p(idle, 99) * 1000:.0f}"
            f" ms, during the provider outage {p(during, 50) * 1000:.0f}/"
            f"{p(during, 99) * 1000:.0f} ms ({still_failing} scans still retrying at the end); "
            f"provider calls {fake_openai.call_count}"
        )
        assert [r["status"] for r in rows.values()] == ["failed"] * len(scans)
        for row in rows.values():
            assert row["steps"]["classify"]["state"] == "failed"
            assert "ProviderUnavailableError" in row["error"]
        assert fake_openai.call_count == 3 * len(scans)  # first try + 2 retries each
        assert still_failing > 0, "the outage was over before the fast lane was measured"
        assert p(during, 99) < 1.0
        assert p(during, 99) < 2 * max(p(idle, 99), 0.05)
    finally:
        app.close()


BAD_IMAGES = {
    "truncated.jpg": "truncated",
    "notes.jpg": "not_an_image",
    "huge-header.png": "too_many_pixels",
    "empty.jpg": "empty",
    "sixty-megabytes.jpg": "too_large",
}


def bad_image(name: str) -> bytes:
    import struct
    import zlib

    if name == "truncated.jpg":
        return sample_bytes("can.jpg")[:2000]
    if name == "notes.jpg":
        return b"shopping list: milk, eggs\n" * 20
    if name == "empty.jpg":
        return b""
    if name == "sixty-megabytes.jpg":
        return b"\xff\xd8\xff\xe0" + b"\0" * (60 * 1024 * 1024)
    # a valid small PNG whose header is patched to claim 20000 x 20000
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, format="PNG")
    png = bytearray(buf.getvalue())
    png[16:24] = struct.pack(">II", 20000, 20000)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


def test_bad_images_are_refused_before_anything_is_queued(
    broker_api,
    temp_vhost,
    service_env,
    database_url,
    tmp_path,
    fake_openai,
    clean_redis,
    start_worker,
):
    env, app, ctx = platform(
        "pipeline", broker_api, temp_vhost, service_env, database_url, tmp_path, fake_openai
    )
    worker = start_worker("storage", "pipeline", env=env)
    try:
        with ctx.session() as session:
            rows_before = session.query(Scan).count()
        for name, code in BAD_IMAGES.items():
            with pytest.raises(ImageRejected) as info:
                submit_scan(app, ctx, bad_image(name), filename=name, owner="t")
            assert info.value.code == code, name
            assert "Fix" in str(info.value) or ":" in str(info.value)
        with ctx.session() as session:
            assert session.query(Scan).count() == rows_before
        assert broker_api.queue_stats(temp_vhost, "user_input") is None or (
            broker_api.queue_stats(temp_vhost, "user_input").messages in (0, None)
        )
        assert not any(Path(env["GROWBIN_IMAGE_DIR"]).rglob("raw.*"))
        assert worker.proc.poll() is None
    finally:
        app.close()
