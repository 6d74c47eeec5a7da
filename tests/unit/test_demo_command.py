"""`growbin demo` runs the whole pipeline with no services at all."""

import os
import subprocess
import sys

from growbin.scan.samples import load_manifest

NOWHERE = {
    # if the demo touched any real service it would fail on these
    "GROWBIN_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
    "GROWBIN_REDIS_URL": "redis://127.0.0.1:1/0",
    "GROWBIN_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none",
    "GROWBIN_RABBITMQ_API_URL": "http://guest:guest@127.0.0.1:1/api",
    "COLUMNS": "160",
}


def test_the_demo_runs_every_sample_through_the_pipeline_without_services(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "growbin.cli", "demo"],
        env={**os.environ, **NOWHERE},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "embedded mode" in proc.stdout
    text = " ".join(proc.stdout.split())
    assert "unavailable in the embedded default" in text
    rows = [line for line in proc.stdout.splitlines() if "offline/" in line]
    assert len(rows) == len(load_manifest())
    assert all("│ yes │" in row for row in rows), rows
    assert not (tmp_path / ".growbin").exists()  # everything lived in a temporary directory
