"""`growbin demo` runs the whole pipeline with no services at all, legibly at 80 columns."""

import os
import re
import subprocess
import sys

import pytest

from growbin.scan.samples import load_manifest

NOWHERE = {
    # if the demo touched any real service it would fail on these
    "GROWBIN_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
    "GROWBIN_REDIS_URL": "redis://127.0.0.1:1/0",
    "GROWBIN_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none",
    "GROWBIN_RABBITMQ_API_URL": "http://guest:guest@127.0.0.1:1/api",
    "COLUMNS": "80",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One run of the demo (it takes seconds), read by every test below."""
    cwd = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "growbin.cli", "demo"],
        env={**os.environ, **NOWHERE},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return proc, cwd


def test_the_demo_runs_every_sample_through_the_pipeline_without_services(demo):
    proc, cwd = demo
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "embedded mode" in out
    assert "unavailable in the embedded default" in " ".join(out.split())
    manifest = load_manifest()
    rows = [line for line in out.splitlines() if line.startswith("│") and "│ yes │" in line]
    assert len(rows) == len(manifest), out
    for name, meta in manifest.items():
        # the expected item, answered, with the hint named as what decided
        assert any(name in row and f"│ {meta['item']} " in row for row in rows), name
        assert f"\n{name}\n" in out  # its block's title, whole
    assert "the hint '생수 페트병' decided" in " ".join(out.split())
    assert not (cwd / ".growbin").exists()  # everything lived in a temporary directory


def test_the_demo_at_80_columns_cuts_nothing_and_keeps_its_blocks_apart(demo):
    proc, _ = demo
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert not re.search(r"[┘┛╯][┏┌╭]", out)  # the second table starts on its own line
    lines = out.splitlines()
    results = lines.index(next(line for line in lines if line.startswith("results")))
    assert lines[results - 1].strip() == ""
    for step in ("preprocess", "classify", "rules", "guidance", "save"):
        assert len(re.findall(rf"\b{step} \d+ ms\b", " ".join(out.split()))) == 6
