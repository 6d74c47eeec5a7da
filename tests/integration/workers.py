"""A real `growbin worker` process for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls,
        profile: str,
        topology: str,
        env: dict[str, str],
        tmp_path: Path,
        extra: tuple[str, ...] = (),
    ) -> WorkerProcess:
        log = tmp_path / f"worker-{profile}-{time.monotonic_ns()}.log"
        cmd = [
            sys.executable,
            "-m",
            "growbin.cli",
            "--topology",
            topology,
            "worker",
            "--profile",
            profile,
            *extra,
        ]
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": pythonpath, **env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(proc=proc, log=log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"worker never logged {text!r}; its output:\n{self.output()[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the main process and its pool children)."""
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
