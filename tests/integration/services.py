"""Private Redis and PostgreSQL servers, on free ports, that a fault test may kill and restart.

The shared services on 6379 and 5432 are never stopped: other suites (and other people) use
them. These helpers have no pytest in them, so the benchmarks (bench/outages.py) use them too;
fixtures wrap them in the conftest files. Every server is stopped and its directory removed by
``close()``, which an ``atexit`` hook also calls, so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServiceBinaryMissingError(RuntimeError):
    """A server binary this helper needs is not installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PrivateRedis:
    """``redis-server`` on its own port, no persistence: a kill empties it, as a crash of an
    unpersisted Redis does. ``kill()`` and ``start()`` again keep the port."""

    port: int = field(default_factory=free_port)
    root: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="growbin-redis-", dir="/tmp"))
    )
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            shutil.rmtree(self.root, ignore_errors=True)
            raise ServiceBinaryMissingError("redis-server is not installed (apt-get install redis)")
        atexit.register(self.close)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 20.0) -> None:
        if self.running():
            return
        cmd = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(self.root)]
        log = (self.root / "redis.log").open("ab")
        try:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server on port {self.port} did not start: "
                    f"{(self.root / 'redis.log').read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.05)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: the server is gone at once, with every key it held."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class TempPostgres:
    """A PostgreSQL cluster of its own (initdb), on its own port, in a temporary directory."""

    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls) -> TempPostgres:
        """initdb a fresh cluster, not started (ServiceBinaryMissingError: no server installed)."""
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise ServiceBinaryMissingError("no PostgreSQL server binaries in /usr/lib/postgresql/")
        bin_dir = Path(found[-1]).parent
        root = Path(tempfile.mkdtemp(prefix="growbin-pg-", dir="/tmp"))
        data = root / "data"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(data, "postgres")
        cluster = cls(bin_dir, data, free_port())
        atexit.register(cluster.close)
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres"]
        try:
            subprocess.run(
                _as_postgres([*initdb, "--auth=trust", "--no-sync"]),
                check=True,
                capture_output=True,
                timeout=120,
            )
        except BaseException:
            cluster.close()
            raise
        return cluster

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

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown; ``immediate``: every backend killed at once, as a crash."""
        self._ctl("-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def close(self) -> None:
        """Stop the server if it runs (immediately when a clean stop fails) and remove it all."""
        if self.data.exists() and self.running():
            try:
                self.stop()
            except subprocess.SubprocessError:
                try:
                    self.stop("immediate")
                except subprocess.SubprocessError:
                    self._kill_postmaster()
        shutil.rmtree(self.data.parent, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
