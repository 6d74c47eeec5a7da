"""Every benchmark scenario, one command:

    .venv/bin/python bench/run.py [--quick] [--only isolation,throughput,scan_chain]

(a) isolation: the fast lane's latency while bulk and external queues are flooded, against a
    plain one-queue Celery setup with the same total concurrency;
(b) throughput: no-op tasks through a growbin profile with every platform feature on, against
    bare Celery with the same pool, prefetch and acks, and Dramatiq, on the same RabbitMQ;
(c) scan chain: the five-step scan pipeline with instant providers, end to end.

Each scenario makes its own vhost (and database) and removes it, prints a table and writes
bench/results/<scenario>.json. Needs this machine's RabbitMQ (with the management API), Redis
and, for the scan chain, PostgreSQL. --quick runs every scenario small (a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # `python bench/run.py`: make `bench.*` importable, as the workers see it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCENARIOS = ("isolation", "throughput", "scan_chain")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small runs, to check the setup")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run (default: all of {', '.join(SCENARIOS)})",
    )
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}"
        )
    return args


def scenario(name: str) -> Callable[[bool, Path], dict[str, Any]]:
    if name == "isolation":
        from bench import isolation

        return isolation.run
    if name == "throughput":
        from bench import throughput

        return throughput.run
    from bench import scan_chain

    return scan_chain.run


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench import common

    started = time.monotonic()
    for name in args.only:
        common.console.rule(f"{name}{' (quick)' if args.quick else ''}")
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"growbin-bench-{name}-") as tmp:
            result = scenario(name)(args.quick, Path(tmp))
        result["quick"] = args.quick
        result["wall_seconds"] = round(time.monotonic() - t0, 1)
        path = common.write_result(name, result)
        common.console.print(
            f"{name}: {result['wall_seconds']:.0f} s, written {path.relative_to(common.REPO)}"
        )
    common.console.print(f"all scenarios: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
