"""promtool (Debian's `prometheus` package) for the rule and config checks.

Missing locally: the checks skip. With CI=true they fail, so CI never passes unchecked rules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

APT_PACKAGE = "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = f"promtool is not installed (apt-get install -y {APT_PACKAGE})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true needs it")
        pytest.skip(reason)
    return found


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )
