"""Worker profiles -> the arguments of a Celery worker."""

from __future__ import annotations

import difflib
import socket
from dataclasses import dataclass

from growbin.errors import ConfigError
from growbin.topology.model import Pool, Topology, WorkerProfile


@dataclass(frozen=True)
class WorkerOptions:
    profile: str
    queues: list[str]
    pool: Pool
    concurrency: int
    prefetch_multiplier: int
    hostname: str
    time_limit: float | None
    soft_time_limit: float | None
    acks_late: bool

    def argv(self, loglevel: str = "INFO") -> list[str]:
        args = [
            "worker",
            f"--queues={','.join(self.queues)}",
            f"--pool={self.pool.value}",
            f"--concurrency={self.concurrency}",
            f"--prefetch-multiplier={self.prefetch_multiplier}",
            f"--hostname={self.hostname}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
        if self.time_limit is not None:
            args.append(f"--time-limit={self.time_limit}")
        if self.soft_time_limit is not None:
            args.append(f"--soft-time-limit={self.soft_time_limit}")
        return args


def profile_named(topology: Topology, name: str) -> WorkerProfile:
    profile = topology.profiles.get(name)
    if profile is None:
        known = ", ".join(sorted(topology.profiles)) or "(none)"
        close = difflib.get_close_matches(name, list(topology.profiles), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown worker profile {name!r} in topology {topology.name!r}.{hint} "
            f"Known profiles: {known}"
        )
    return profile


def worker_options(
    topology: Topology,
    name: str,
    *,
    concurrency: int | None = None,
    pool: Pool | None = None,
    hostname: str | None = None,
) -> WorkerOptions:
    profile = profile_named(topology, name)
    return WorkerOptions(
        profile=name,
        queues=list(profile.queues),
        pool=pool or profile.pool,
        concurrency=concurrency or profile.concurrency,
        prefetch_multiplier=profile.prefetch_multiplier,
        hostname=hostname or f"{name}@{socket.gethostname()}",
        time_limit=profile.time_limit,
        soft_time_limit=profile.soft_time_limit,
        acks_late=profile.acks_late,
    )
