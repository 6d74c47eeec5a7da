"""`growbin worker probe`: is this host's worker ready? For orchestrators' probes.

It reads the progress record the worker's main process writes every few seconds
(:mod:`growbin.runtime.progress`) and exits 0 only when the record is recent, its process
exists, the worker is connected to the broker, consumes every queue of its profile and is not
stalled. No broadcast to the cluster and no connection to any service: a probe must answer in
well under a second, on a loaded node too.

``growbin`` routes ``worker probe`` here before it imports the rest of the command line (typer,
the API, Celery): that import alone takes seconds. For the same reason the one setting it needs,
``GROWBIN_WORKER_PROGRESS_DIR``, is read here instead of through :mod:`growbin.settings`.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from growbin.runtime.progress import (
    INTERVAL,
    PROBE_MAX_AGE_INTERVALS,
    ProbeResult,
    pid_alive,
    probe,
    progress_dir,
    progress_file,
    read_progress_file,
)

PROGRAM = "growbin worker probe"
DIR_VARIABLE = "GROWBIN_WORKER_PROGRESS_DIR"


def default_hostname(profile: str) -> str:
    """The hostname `growbin worker --profile PROFILE` takes unless told otherwise."""
    return f"{profile}@{socket.gethostname()}"


def probe_worker(directory: Path, hostname: str, *, max_age: float) -> tuple[Path, ProbeResult]:
    path = progress_file(directory, hostname)
    return path, probe(read_progress_file(path), path=path, max_age=max_age, alive=pid_alive)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Exit 0 when the worker of PROFILE on this host is connected, consumes its "
        "profile's queues and is not stalled; 1 otherwise (the reason goes to stderr). Reads "
        f"the worker's progress file in ${DIR_VARIABLE} (default: <temp>/growbin-workers).",
    )
    p.add_argument("--profile", "-p", required=True, help="Worker profile name.")
    p.add_argument("--hostname", help="The worker's --hostname, if it was given one.")
    p.add_argument(
        "--max-age",
        type=float,
        default=INTERVAL * PROBE_MAX_AGE_INTERVALS,
        help="Seconds after which the record counts as stale (default: %(default)g).",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="Print nothing when ready.")
    return p


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = os.environ if environ is None else environ
    started = time.perf_counter()
    directory = progress_dir(env.get(DIR_VARIABLE) or None)
    _, result = probe_worker(
        directory, args.hostname or default_hostname(args.profile), max_age=args.max_age
    )
    took = (time.perf_counter() - started) * 1000
    if result.ok:
        if not args.quiet:
            print(f"ready: {result.reason} ({took:.0f} ms)")
        return 0
    print(f"not ready: {result.reason}", file=sys.stderr)
    return 1


def global_options_end(argv: Sequence[str]) -> int:
    """Index of the first argument after growbin's global options (``--topology X``)."""
    i = 0
    while i < len(argv):
        if argv[i] in ("--topology", "-t"):
            i += 2
        elif argv[i].startswith("--topology="):
            i += 1
        else:
            break
    return i


def probe_args(argv: Sequence[str]) -> list[str] | None:
    """The probe's own arguments when ``argv`` (without the program) is `worker probe ...`."""
    i = global_options_end(argv)
    if list(argv[i : i + 2]) == ["worker", "probe"]:
        return list(argv[i + 2 :])
    return None


if __name__ == "__main__":
    sys.exit(main())
