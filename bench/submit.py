"""The submit path: ``POST /v1/scans`` over real HTTP against a raw confirmed publish.

    .venv/bin/python bench/submit.py [--requests 200] [--concurrency 8]

Both sides put the same message on the same quorum queue (the pipeline preset's user_input)
and wait for RabbitMQ's publisher confirm; nothing consumes it. The API side adds what
accepting a scan costs: HTTP and multipart parsing, the API-key lookup, the image checks
(magic bytes, header dimensions), storing the photo, inserting the scan row, and Celery's
chain publish. The raw side is a kombu producer publishing the body and headers Celery sent for
one scan, captured once, with ``confirm_publish``. Each side runs ``--requests`` calls from
``--concurrency`` threads, each with its own connection, after a warm-up.

It makes its own vhost (the topology applied), PostgreSQL database, image directory and API
process (``python -m growbin.api serve``), and removes them all. Prints a table and writes
bench/results/submit.json.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # `python bench/submit.py`: make `bench.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common

API_SECRET = "growbin-bench-api-secret"  # noqa: S105 - a throwaway key for a temporary database
WARMUP = 20


def small_photo() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (64, 64), (163, 165, 171))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def run_threads(total: int, concurrency: int, make_call: Callable[[], Callable[[], None]]):
    """``total`` calls from ``concurrency`` threads; returns (wall seconds, latencies)."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    remaining = iter(range(total))
    start = threading.Barrier(concurrency + 1)

    def worker() -> None:
        call = make_call()
        start.wait()
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            began = time.perf_counter()
            try:
                call()
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
            with lock:
                latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} call(s) failed; the first: {errors[0]!r}")
    return wall, latencies


def summary(wall: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "requests": len(latencies),
        "seconds": round(wall, 3),
        "per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(common.percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(common.percentile(latencies, 99) * 1000, 2),
    }


def start_api(processes: common.Processes, env: dict[str, str], port: int) -> common.Process:
    import httpx

    cmd = [sys.executable, "-m", "growbin.api", "serve", "--port", str(port)]
    cmd += ["--log-level", "warning"]
    process = processes.start("api", cmd, env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        process.check()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API did not start; its log:\n{process.output()[-3000:]}")


def make_key(database_url: str) -> str:
    from growbin.api.keys import create_key
    from growbin.db.engine import make_engine, session_factory
    from growbin.settings import load_settings

    engine = make_engine(load_settings(env="test"), url=database_url)
    try:
        with session_factory(engine).begin() as session:
            _, key = create_key(session, API_SECRET.encode(), owner="bench", name="bench")
        return key
    finally:
        engine.dispose()


def captured_chain_message(settings: Any) -> dict[str, Any]:
    """The message Celery publishes for one scan's chain, captured from a real publish."""
    from celery import signals

    from growbin.runtime.celery_app import create_app
    from growbin.runtime.registry import registrars
    from growbin.scan.pipeline import scan_chain
    from growbin.topology import loader

    app = create_app(settings, loader.load("pipeline"), registrars=registrars(settings))
    seen: dict[str, Any] = {}

    def capture(**sent: Any) -> None:
        seen.update({k: sent[k] for k in ("body", "exchange", "routing_key", "headers")})
        seen["properties"] = sent.get("properties") or {}

    signals.before_task_publish.connect(capture, weak=False)
    try:
        scan_chain(app, uuid.uuid4().hex).apply_async()
    finally:
        signals.before_task_publish.disconnect(capture)
        app.close()
    return seen


def raw_publisher(broker_url: str, message: dict[str, Any]) -> Callable[[], Callable[[], None]]:
    from kombu import Connection, Producer

    def make_call() -> Callable[[], None]:
        connection = Connection(broker_url, transport_options={"confirm_publish": True})
        producer = Producer(connection)
        properties = {
            k: v
            for k, v in message["properties"].items()
            if k in ("correlation_id", "reply_to", "priority")
        }

        def call() -> None:
            producer.publish(
                message["body"],
                exchange=message["exchange"],
                routing_key=message["routing_key"],
                headers=message["headers"],
                serializer="json",
                delivery_mode=2,
                retry=False,
                **properties,
            )

        return call

    return make_call


def api_poster(port: int, key: str, photo: bytes) -> Callable[[], Callable[[], None]]:
    import httpx

    def make_call() -> Callable[[], None]:
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

        def call() -> None:
            answer = client.post("/v1/scans", files={"image": ("photo.jpg", photo)})
            if answer.status_code != 202:
                raise RuntimeError(f"POST /v1/scans answered {answer.status_code}: {answer.text}")

        return call

    return make_call


def run(requests: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    from growbin.settings import load_settings
    from growbin.topology import loader
    from growbin.topology.broker_api import BrokerApi
    from growbin.topology.plan import apply

    photo = small_photo()
    with (
        common.temp_vhost("submit") as vhost,
        common.temp_database() as database_url,
        common.processes(workdir) as processes,
    ):
        with BrokerApi(common.API_URL) as api:
            topology = loader.load("pipeline").topology
            apply(topology.model_copy(update={"vhost": vhost.name}), api)
        env = {
            "GROWBIN_ENV": "test",
            "GROWBIN_BROKER_URL": vhost.broker_url,
            "GROWBIN_RABBITMQ_API_URL": common.API_URL,
            "GROWBIN_REDIS_URL": common.REDIS_URL,
            "GROWBIN_DATABASE_URL": database_url,
            "GROWBIN_IMAGE_DIR": str(workdir / "images"),
            "GROWBIN_TOPOLOGY": "pipeline",
            "GROWBIN_API_SECRET": API_SECRET,
        }
        port = _free_port()
        start_api(processes, env, port)
        key = make_key(database_url)
        settings = load_settings(
            env="test",
            broker_url=vhost.broker_url,
            redis_url=common.REDIS_URL,
            database_url=database_url,
        )
        message = captured_chain_message(settings)
        post, publish = api_poster(port, key, photo), raw_publisher(vhost.broker_url, message)

        run_threads(WARMUP, min(concurrency, WARMUP), post)
        run_threads(WARMUP, min(concurrency, WARMUP), publish)
        api_side = summary(*run_threads(requests, concurrency, post))
        raw_side = summary(*run_threads(requests, concurrency, publish))
    return {
        "requests": requests,
        "concurrency": concurrency,
        "image_bytes": len(photo),
        "queue": "user_input (quorum, pipeline preset)",
        "api": api_side,
        "raw_publish": raw_side,
        "ratio_per_second": round(api_side["per_second"] / raw_side["per_second"], 3),
        "ratio_p50": round(api_side["p50_ms"] / raw_side["p50_ms"], 2),
        "ratio_p99": round(api_side["p99_ms"] / raw_side["p99_ms"], 2),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="growbin-bench-submit-") as tmp:
        result = run(args.requests, args.concurrency, Path(tmp))
    rows = [
        [name, side["requests"], side["per_second"], side["p50_ms"], side["p99_ms"]]
        for name, side in (
            ("POST /v1/scans (API)", result["api"]),
            ("raw confirmed publish", result["raw_publish"]),
        )
    ]
    rows.append(
        ["API / raw", "", result["ratio_per_second"], result["ratio_p50"], result["ratio_p99"]]
    )
    common.print_table(
        f"submit path: {args.requests} requests, concurrency {args.concurrency}",
        ["path", "requests", "req/s", "p50 ms", "p99 ms"],
        rows,
    )
    path = common.write_result("submit", result)
    common.console.print(f"written to {path.relative_to(common.REPO)}")


if __name__ == "__main__":
    main()
