"""A PostgreSQL cluster of the test's own, on its own port, that a test may stop and start.

The shared PostgreSQL on 5432 is never stopped: other suites (and other people) use it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.integration.conftest import service_missing


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TempPostgres:
    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@pytest.fixture
def temp_postgres():
    """A fresh cluster (initdb), started and migrated to head; stopped and removed after."""
    from growbin.db.migrate import upgrade
    from growbin.settings import load_settings

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        service_missing("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    bin_dir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="growbin-pg-", dir="/tmp"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    cluster = TempPostgres(bin_dir, data, _free_port())
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        upgrade(load_settings(env="test"), url=cluster.url)
        yield cluster
    finally:
        if cluster.running():
            try:
                cluster.stop()
            except subprocess.SubprocessError:
                subprocess.run(
                    _as_postgres(
                        [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
                    ),
                    check=False,
                )
        shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
