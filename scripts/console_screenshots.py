#!/usr/bin/env python3
"""Refresh the console's screenshots in docs/ (overview and dead letters, 1280 and 375 px).

Needs the services of the integration tests (RabbitMQ, Redis, PostgreSQL: `make services`) and
Debian's chromium and chromium-driver. It runs the screenshot test, which starts the API and a
worker on a temporary vhost, makes a few real dead letters and photographs the pages:

    .venv/bin/python scripts/console_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/integration/console/test_console_screenshots.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="directory for the PNG files (docs)")
    options = parser.parse_args()
    out = (REPO / options.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GROWBIN_CONSOLE_SCREENSHOTS": str(out), "CI": "true"}
    command = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=REPO, env=env, check=False)
    if done.returncode == 0:
        for picture in sorted(out.glob("console-*.png")):
            print(picture.relative_to(REPO))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
