"""The deployment an outage run stands on: a vhost, private Redis and PostgreSQL, the workers.

Set up as an operator would: `growbin db upgrade`, `growbin topology apply` (the production
preset, written to a file), then `growbin worker` for the ai, api and batch profiles and
`growbin beat`, each a real process. See bench/outages.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from tests.integration.services import PrivateRedis, TempPostgres, free_port

SERVICES = ("redis", "postgresql")


@dataclass(frozen=True)
class OutagePlan:
    service: str  # "redis" or "postgresql"
    outage: float  # seconds the service is down
    scans: int
    tasks: int
    lead: float = 10.0  # seconds of load before the outage begins
    tail: float = 10.0  # seconds of load after it ends
    ai_workers: int = 1
    api_workers: int = 1
    batch_concurrency: int = 2  # the preset's 4 prefork children are too many for 2 cores
    dlq_sync_every: float | None = None  # override the preset's dlq-sync schedule (60 s)
    settle_idle: float = 90.0  # give up after this long without any scan or task finishing
    settle_max: float = 480.0
    submit_threads: int = 4

    @property
    def window(self) -> float:
        return self.lead + self.outage + self.tail


def growbin_command(env: dict[str, str], *args: str, timeout: float = 180.0) -> str:
    """Run the `growbin` command as an operator would; raise with its output on failure."""
    pythonpath = os.pathsep.join(filter(None, [str(common.REPO), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "growbin.cli", *args],
        cwd=common.REPO,
        env={**os.environ, "PYTHONPATH": pythonpath, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`growbin {' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def write_topology(path: Path, vhost: str, dlq_sync_every: float | None) -> Path:
    """The production preset, on ``vhost`` (when the model still names one), as a file."""
    import yaml

    from growbin.topology import loader
    from growbin.topology.model import Topology

    topology = loader.load("production").topology
    if dlq_sync_every is not None and "dlq-sync" in topology.schedule:
        schedule = dict(topology.schedule)
        schedule["dlq-sync"] = schedule["dlq-sync"].model_copy(update={"every": dlq_sync_every})
        topology = topology.model_copy(update={"schedule": schedule})
    data = yaml.safe_load(loader.dump(topology))
    if "vhost" in Topology.model_fields:
        # the file must name the broker URL's vhost, or (before issue 10) apply would act on '/'
        data["vhost"] = vhost
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def service_env(
    vhost: common.Vhost, redis_url: str, database_url: str, topology: Path, workdir: Path
) -> dict[str, str]:
    return {
        "GROWBIN_ENV": "test",
        "GROWBIN_BROKER_URL": vhost.broker_url,
        "GROWBIN_RABBITMQ_API_URL": common.API_URL,
        "GROWBIN_REDIS_URL": redis_url,
        "GROWBIN_DATABASE_URL": database_url,
        "GROWBIN_TOPOLOGY": str(topology),
        "GROWBIN_PROVIDERS": "offline",
        "GROWBIN_IMAGE_DIR": str(workdir / "images"),
        "GROWBIN_JOURNAL_PATH": str(workdir / "journal" / "{hostname}.db"),
        "GROWBIN_METRICS_DIR": str(workdir / "metrics"),
        "GROWBIN_METRICS_ADDR": "127.0.0.1",
    }


@dataclass
class Deployment:
    plan: OutagePlan
    vhost: common.Vhost
    redis: PrivateRedis
    postgres: TempPostgres
    env: dict[str, str]
    topology: Path
    workdir: Path
    group: common.Processes
    app: Any = None
    ctx: Any = None
    beat: common.Process | None = None

    @property
    def workers(self) -> list[common.Process]:
        return [p for p in self.group.started if p is not self.beat]

    def down(self) -> None:
        if self.plan.service == "redis":
            self.redis.kill()
        else:
            self.postgres.stop("immediate")

    def up(self) -> None:
        if self.plan.service == "redis":
            self.redis.start()
        else:
            self.postgres.start()


@contextmanager
def deployment(
    plan: OutagePlan,
    workdir: Path,
    *,
    vhost: str | None = None,
    redis: PrivateRedis | None = None,
    postgres: TempPostgres | None = None,
) -> Iterator[Deployment]:
    """Everything one run needs, torn down in reverse order whatever happens.

    The vhost (created and permitted, empty), Redis and PostgreSQL may be given (the test
    suite's fixtures own them then); whatever is not given is made here and removed after.
    """
    from pydantic import SecretStr

    from growbin.runtime.celery_app import create_app
    from growbin.runtime.registry import registrars
    from growbin.scan.context import ScanContext, attach_scan_context
    from growbin.settings import load_settings
    from growbin.topology import loader

    if plan.service not in SERVICES:
        raise ValueError(f"unknown service {plan.service!r}: choose one of {', '.join(SERVICES)}")
    with ExitStack() as stack:
        if vhost is None:
            the_vhost = stack.enter_context(common.temp_vhost(f"outage-{plan.service}"))
        else:
            the_vhost = common.Vhost(vhost)
        redis_server = redis
        if redis_server is None:
            redis_server = PrivateRedis()
            stack.callback(redis_server.close)
        redis_server.start()
        if postgres is None:
            postgres = TempPostgres.create()
            stack.callback(postgres.close)
        if not postgres.running():
            postgres.start()
        topology = write_topology(workdir / "topology.yaml", the_vhost.name, plan.dlq_sync_every)
        env = service_env(the_vhost, redis_server.url(), postgres.url, topology, workdir)
        growbin_command(env, "db", "upgrade")
        growbin_command(env, "--topology", str(topology), "topology", "apply")
        group = stack.enter_context(common.processes(workdir))
        dep = Deployment(plan, the_vhost, redis_server, postgres, env, topology, workdir, group)

        settings = load_settings(
            env="test",
            broker_url=SecretStr(the_vhost.broker_url),
            redis_url=SecretStr(redis_server.url()),
            database_url=SecretStr(postgres.url),
            image_dir=env["GROWBIN_IMAGE_DIR"],
            providers="offline",
            topology=str(topology),
        )
        dep.app = create_app(settings, loader.load(str(topology)), registrars=registrars(settings))
        stack.callback(dep.app.close)
        dep.ctx = ScanContext.build(settings)
        stack.callback(dep.ctx.engine.dispose)
        attach_scan_context(dep.app, dep.ctx)

        tag = uuid.uuid4().hex[:6]
        hostnames = []
        profiles = [("ai", i) for i in range(plan.ai_workers)]
        profiles += [("api", i) for i in range(plan.api_workers)] + [("batch", 0)]
        for profile, i in profiles:
            # profile@host, as `growbin status` expects to find a profile's workers
            hostname = f"{profile}@outage-{tag}-{i + 1}"
            extra = ("--concurrency", str(plan.batch_concurrency)) if profile == "batch" else ()
            group.start(
                f"{profile}-{i + 1}",
                common.growbin_worker_cmd(topology, profile, hostname, *extra),
                {**env, "GROWBIN_METRICS_PORT": str(free_port())},
            )
            hostnames.append(hostname)
        common.wait_for_workers(dep.app, hostnames, list(group.started), timeout=180)
        beat_cmd = [sys.executable, "-m", "growbin.cli", "--topology", str(topology), "beat"]
        dep.beat = group.start("beat", [*beat_cmd, "--loglevel", "WARNING"], env)
        time.sleep(2)
        dep.beat.check()
        yield dep
