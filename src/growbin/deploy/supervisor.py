"""A supervisor configuration (seed 003) for one host: the API, one worker per profile, the beat.

Each program stops with SIGTERM to its main process (a worker's warm shutdown: it finishes the
tasks it runs; the messages it only prefetched go back to their queue) and is killed, with its
whole process group (prefork children), only after its grace: a worker's is its longest task
plus the shutdown margin, as in the Kubernetes and compose files (growbin.deploy.profiles).

Nothing secret is written here: the programs inherit supervisord's environment, which carries
the ``GROWBIN_*`` settings (broker, Redis and database URLs, API secret). The database schema
and the topology are prepared before the programs start (``growbin db upgrade``, ``growbin
topology apply``); a worker started before that refuses to run and supervisor retries it.
"""

from __future__ import annotations

from dataclasses import dataclass

from growbin.deploy.manifests import PRESET_PREFIX, header
from growbin.deploy.profiles import METRICS_PORT, profile_deploys
from growbin.topology.loader import LoadedTopology

CONF_FILE = "growbin.conf"
GROUP = "growbin"
# supervisor's `startretries` with its backoff (1 s, 2 s, ...): about a minute for a worker
# started before `growbin topology apply` to find the topology in force.
START_RETRIES = 10
API_GRACE = 30
BEAT_GRACE = 30


@dataclass(frozen=True)
class SupervisorOptions:
    program: str = "growbin"  # the console script, on supervisord's PATH
    api_host: str = "127.0.0.1"
    api_port: int = 8001
    log_dir: str = "/var/log/growbin"
    directory: str = "/var/lib/growbin"


def _topology_argument(loaded: LoadedTopology) -> str:
    source = loaded.source
    return source.removeprefix(PRESET_PREFIX) if source.startswith(PRESET_PREFIX) else source


def _program(
    name: str,
    command: str,
    *,
    grace: int,
    priority: int,
    options: SupervisorOptions,
    environment: dict[str, str] | None = None,
) -> list[str]:
    lines = [
        f"[program:{name}]",
        f"command={command}",
        f"directory={options.directory}",
        "autostart=true",
        "autorestart=true",
        "startsecs=10",
        f"startretries={START_RETRIES}",
        "stopsignal=TERM",
        f"stopwaitsecs={grace}",
        # SIGTERM to the main process only: prefork children die at once on SIGTERM (Celery
        # resets it to the default in them), which would cut their tasks short. The final
        # SIGKILL after the grace takes the whole group.
        "stopasgroup=false",
        "killasgroup=true",
        f"priority={priority}",
        "redirect_stderr=true",
        f"stdout_logfile={options.log_dir}/{name}.log",
        "stdout_logfile_maxbytes=50MB",
        "stdout_logfile_backups=5",
    ]
    if environment:
        pairs = ",".join(f'{key}="{value}"' for key, value in environment.items())
        lines.append(f"environment={pairs}")
    return lines


def render_supervisor(loaded: LoadedTopology, options: SupervisorOptions | None = None) -> str:
    """The supervisor configuration of ``loaded``: one program per process, in one group."""
    options = options or SupervisorOptions()
    growbin = f"{options.program} --topology {_topology_argument(loaded)}"
    programs: list[list[str]] = []
    names: list[str] = []

    api = f"{GROUP}-api"
    names.append(api)
    programs.append(
        _program(
            api,
            f"{growbin} api --host {options.api_host} --port {options.api_port}",
            grace=API_GRACE,
            priority=200,
            options=options,
        )
    )
    for index, deploy in enumerate(profile_deploys(loaded)):
        name = f"{GROUP}-{deploy.service}"
        names.append(name)
        programs.append(
            _program(
                name,
                f"{growbin} worker --profile {deploy.name}",
                grace=deploy.grace_seconds,
                priority=300,
                options=options,
                # one /metrics port per worker on the host
                environment={"GROWBIN_METRICS_PORT": str(METRICS_PORT + index)},
            )
        )
    beat = f"{GROUP}-beat"
    names.append(beat)
    programs.append(
        _program(beat, f"{growbin} beat", grace=BEAT_GRACE, priority=400, options=options)
    )

    text = header("Supervisor programs", loaded, "growbin deploy render supervisor --out DIR")
    text += (
        "# Include it from supervisord.conf ([include] files = /etc/growbin/growbin.conf). The\n"
        "# programs inherit supervisord's environment: put the GROWBIN_* settings there, never\n"
        "# here. Before the first start (and after each upgrade) run `growbin db upgrade` and\n"
        "# `growbin topology apply`. Then: supervisorctl start growbin:*\n"
        "# One worker per profile; a worker's stopwaitsecs is its longest task plus 30 s.\n"
    )
    sections = [[f"[group:{GROUP}]", f"programs={','.join(names)}"], *programs]
    return text + "\n" + "\n\n".join("\n".join(section) for section in sections) + "\n"


def render_supervisor_files(loaded: LoadedTopology) -> dict[str, str]:
    """The files under deploy/supervisor/: ``growbin.conf``."""
    return {CONF_FILE: render_supervisor(loaded)}
