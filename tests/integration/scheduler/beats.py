"""Real `growbin beat` processes for the scheduler tests, and the messages they send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kombu import Connection

from growbin.scheduler.scheduler import ENTRY_HEADER, NODE_HEADER, RUN_AT_HEADER

REPO = Path(__file__).resolve().parents[3]

# what `growbin beat` runs, without the CLI wiring (cli.py adds the command)
BEAT_MAIN = """
from growbin.scheduler.commands import run_beat
from growbin.scheduler.config import BeatConfig
from growbin.settings import load_settings
from growbin.topology import loader

settings = load_settings()
run_beat(settings, loader.load(settings.topology), BeatConfig.load(), loglevel="INFO")
"""


@dataclass
class BeatProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], log: Path) -> BeatProcess:
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-c", BEAT_MAIN],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": pythonpath, **env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(proc, log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(timeout=10)


@dataclass(frozen=True)
class Sent:
    entry: str
    run_at: float
    node: str


def drain(broker_url: str, queue: str) -> list[Sent]:
    """Take every message out of ``queue`` (nothing consumes it) and read the beat headers."""
    found: list[Sent] = []
    with Connection(broker_url) as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            headers = message.headers
            found.append(
                Sent(headers[ENTRY_HEADER], float(headers[RUN_AT_HEADER]), headers[NODE_HEADER])
            )
    return sorted(found, key=lambda s: s.run_at)


def pid_of(token: str | None) -> int | None:
    """The process holding the lock: tokens are host:pid:random."""
    return int(token.split(":")[1]) if token else None


def wait_for(predicate, timeout: float, interval: float = 0.05) -> float | None:
    """Seconds until ``predicate`` held, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    return None
