"""How `growbin` answers a typo: the usage line and exit 2, never a traceback.

Run as a subprocess, as a user types it: typer 0.2x vendors click (its exceptions are
``typer._click.exceptions.*``), so catching ``click.ClickException`` in the entry point missed
them and every typo printed a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from growbin.errors import TopologyError


def growbin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "growbin.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GROWBIN_ENV": "test", "COLUMNS": "100"},
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["topolgy", "lint"], "topolgy"),
        (["topology", "lint", "--topolgy", "pipeline"], "--topolgy"),
        (["worker", "--profle", "ai"], "--profle"),
    ],
    ids=["mistyped command", "mistyped option", "mistyped worker option"],
)
def test_a_typo_prints_the_usage_line_and_exits_2_without_a_traceback(args, named):
    proc = growbin(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "Usage:" in proc.stderr
    assert named in proc.stderr


def test_a_growbin_error_still_prints_one_line_and_its_own_exit_code():
    proc = growbin("--topology", "no-such-preset", "topology", "lint")
    assert proc.returncode == TopologyError.exit_code, proc.stderr
    assert "Traceback" not in proc.stderr and "Usage:" not in proc.stderr
    assert proc.stderr.startswith("error:") and "no-such-preset" in proc.stderr


def test_help_exits_0():
    proc = growbin("--help")
    assert proc.returncode == 0
    assert "worker" in proc.stdout
