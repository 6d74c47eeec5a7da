"""A RabbitMQ node of the test's own, on free ports, for outage tests.

The shared broker is never stopped: this node has its own name, ports, data and log
directories, an empty plugin list and a config file that names only its own listener (the
machine's rabbitmq.conf pins 5672). Stopping and starting it again keeps its data, like a real
broker restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from tests.integration.conftest import service_missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RabbitNode:
    def __init__(self, base: Path) -> None:
        self.name = f"growbin-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.base = base
        for sub in ("mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (base / "rabbitmq-env.conf").write_text("")
        if os.geteuid() == 0:
            # the Debian wrapper runs the node as the rabbitmq user (with its Erlang cookie)
            for path in [base, *base.rglob("*")]:
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["rabbitmqctl", "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, timeout: float = 90) -> float:
        """Start and wait until it accepts connections; returns the seconds it took."""
        started = time.monotonic()
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, timeout=30)
        while time.monotonic() - started < timeout:
            # await_startup fails at once until the node has registered with epmd
            if self._ctl("await_startup", "--timeout", "30", timeout=40).returncode == 0:
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"RabbitMQ node {self.name} did not start; logs in {self.base}/log")

    def stop(self) -> subprocess.CompletedProcess[str]:
        return self._ctl("stop", timeout=60)

    def ensure_stopped(self) -> None:
        """Stop it, pass or fail; if rabbitmqctl cannot, signal the node's own pid."""
        if self.stop().returncode == 0:
            return
        for pid_file in (self.base / "mnesia").glob("*.pid"):
            try:
                pid = int(pid_file.read_text().strip())
                # only the process that runs this node (a pid may have been reused)
                if self.name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGTERM)
            except (ValueError, OSError):
                pass


@pytest.fixture
def rabbit_node():
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        service_missing("rabbitmq-server is not installed: the outage test starts its own node")
    # not under pytest's temporary directory: that is private to root, and the node runs as
    # the rabbitmq user
    base = Path(tempfile.mkdtemp(prefix="growbin-rabbit-"))
    node = RabbitNode(base)
    try:
        yield node
    finally:
        node.ensure_stopped()
        shutil.rmtree(base, ignore_errors=True)
