"""A Redis server of the test's own, on a free port, for outage tests.

The shared Redis is never stopped. This one keeps nothing on disk unless asked (``persist``):
stopping and starting it again then loses every key, like a production Redis without AOF.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from tests.integration.api.rabbit_node import free_port
from tests.integration.conftest import service_missing


class RedisNode:
    def __init__(self, base: Path, *, persist: bool = False) -> None:
        self.base = base
        self.port = free_port()
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> float:
        """Start and wait until it answers PING; returns the seconds it took."""
        started = time.monotonic()
        persistence = ["--appendonly", "yes"] if self.persist else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.base),
                "--save", "",
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            while time.monotonic() - started < timeout:
                try:
                    client.ping()
                    return time.monotonic() - started
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise AssertionError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


def private_redis(tmp_path: Path, *, persist: bool = False) -> Iterator[RedisNode]:
    """For a fixture: ``yield from private_redis(tmp_path)``; stopped at the end, pass or fail."""
    if shutil.which("redis-server") is None:
        service_missing("redis-server is not installed: the outage test starts its own")
    node = RedisNode(tmp_path / "redis", persist=persist)
    node.base.mkdir()
    try:
        yield node
    finally:
        node.stop()
