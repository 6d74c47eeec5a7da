"""The Docker Compose deployment: the whole stack on one host, generated from the topology.

    growbin deploy render compose --out deploy/compose

writes ``compose.yaml`` and ``topology.yaml`` (the file every Growbin container reads). One
worker service per profile of the topology; everything else is the same for every topology.

Secrets never appear in the file: passwords and the Erlang cookie are compose ``secrets``
(files under ``deploy/compose/secrets/``, made by ``make-secrets.sh``, never committed), and
the URLs that embed passwords come from env files in the same directory.
"""

from __future__ import annotations

from typing import Any

from growbin.deploy.manifests import dump, header, render_command, topology_text
from growbin.deploy.profiles import (
    IMAGE_DIR,
    JOURNAL_DIR,
    ProfileDeploy,
    profile_deploys,
)
from growbin.topology.loader import LoadedTopology

OUT = "deploy/compose"
COMPOSE_FILE = "compose.yaml"
TOPOLOGY_FILE = "topology.yaml"

RABBITMQ_IMAGE = "rabbitmq:4.1-management"
RABBITMQ_NODES = ("rabbitmq-0", "rabbitmq-1", "rabbitmq-2")
REDIS_IMAGE = "redis:7.4"
POSTGRES_IMAGE = "postgres:16"
PROMETHEUS_IMAGE = "prom/prometheus:v2.55.1"
ALERTMANAGER_IMAGE = "prom/alertmanager:v0.28.1"
GRAFANA_IMAGE = "grafana/grafana:11.3.0"
API_PORT = 8000
FLOWER_PORT = 5555
BEATS = 2

SECRETS = (
    "erlang_cookie",
    "postgres_password",
    "redis_password",
    "grafana_admin_password",
    "slack_api_url",
    "api_metrics_token",
)
GROWBIN_ENV_FILE = "secrets/growbin.env"
RABBITMQ_ENV_FILE = "secrets/rabbitmq.env"
FLOWER_ENV_FILE = "secrets/flower.env"

ONE_SHOTS = ("db-upgrade", "topology-apply")
HEALTHY = {"condition": "service_healthy"}
DONE = {"condition": "service_completed_successfully"}


def _python_get(url: str) -> list[str]:
    # the image has no curl: Python's urllib answers the same question
    code = f"import urllib.request; urllib.request.urlopen('{url}', timeout=5)"
    return ["CMD", "python", "-c", code]


def _health(
    test: list[str], *, interval: int = 15, retries: int = 5, start: int = 30
) -> dict[str, Any]:
    return {
        "test": test,
        "interval": f"{interval}s",
        "timeout": "10s",
        "retries": retries,
        "start_period": f"{start}s",
    }


def _growbin(
    command: list[str], depends_on: dict[str, Any], healthcheck: dict[str, Any] | None
) -> dict[str, Any]:
    """A container of the Growbin image: non-root, read-only root, no capabilities."""
    service: dict[str, Any] = {
        "image": "${GROWBIN_IMAGE:-growbin:latest}",
        "build": {"context": "../..", "dockerfile": "Dockerfile"},
        "command": command,
        "env_file": [GROWBIN_ENV_FILE],
        "environment": {
            "GROWBIN_ENV": "production",
            "GROWBIN_TOPOLOGY": "/etc/growbin/topology.yaml",
            "GROWBIN_LOG_FORMAT": "json",
            "GROWBIN_IMAGE_DIR": IMAGE_DIR,
            "GROWBIN_JOURNAL_PATH": JOURNAL_DIR + "/{hostname}.db",
        },
        "volumes": [f"./{TOPOLOGY_FILE}:/etc/growbin/topology.yaml:ro"],
        "read_only": True,
        "tmpfs": ["/tmp"],  # noqa: S108 - the container's own tmpfs
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "depends_on": depends_on,
    }
    if healthcheck is not None:
        service["healthcheck"] = healthcheck
    return service


def _ready_for_growbin() -> dict[str, Any]:
    """What a long-running Growbin service waits for: migrated database, applied topology."""
    return {
        "db-upgrade": dict(DONE),
        "topology-apply": dict(DONE),
        "redis": dict(HEALTHY),
        **{node: dict(HEALTHY) for node in RABBITMQ_NODES},
    }


def rabbitmq(node: str, first: bool) -> dict[str, Any]:
    # The image wants the cookie as a 0600 file owned by rabbitmq; a compose secret is a
    # read-only bind mount, so it is copied into place before the server starts.
    start = (
        "install -m 600 -o rabbitmq -g rabbitmq /run/secrets/erlang_cookie "
        "/var/lib/rabbitmq/.erlang.cookie && exec docker-entrypoint.sh rabbitmq-server"
    )
    service: dict[str, Any] = {
        "image": RABBITMQ_IMAGE,
        "hostname": node,
        "entrypoint": ["/bin/sh", "-c", start],
        "env_file": [RABBITMQ_ENV_FILE],
        "volumes": [
            "./rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-growbin.conf:ro",
            "./rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro",
            f"{node}-data:/var/lib/rabbitmq",
        ],
        "secrets": ["erlang_cookie"],
        "healthcheck": _health(
            ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"],
            interval=10,
            retries=12,
            start=60,
        ),
        "restart": "unless-stopped",
    }
    if first:
        service["ports"] = ["127.0.0.1:15672:15672"]
    else:
        # the first node forms the cluster; the others join it (classic peer discovery)
        service["depends_on"] = {RABBITMQ_NODES[0]: dict(HEALTHY)}
    return service


def redis() -> dict[str, Any]:
    return {
        "image": REDIS_IMAGE,
        "command": [
            "sh",
            "-c",
            'exec redis-server --appendonly yes --appendfsync everysec --requirepass "$$(cat '
            '/run/secrets/redis_password)"',
        ],
        "volumes": ["redis-data:/data"],
        "secrets": ["redis_password"],
        "healthcheck": _health(
            [
                "CMD-SHELL",
                'REDISCLI_AUTH="$$(cat /run/secrets/redis_password)" redis-cli ping | grep -q PONG',
            ],
            interval=10,
        ),
        "restart": "unless-stopped",
    }


def postgres() -> dict[str, Any]:
    return {
        "image": POSTGRES_IMAGE,
        "environment": {
            "POSTGRES_USER": "growbin",
            "POSTGRES_DB": "growbin",
            "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password",
        },
        "volumes": ["postgres-data:/var/lib/postgresql/data"],
        "secrets": ["postgres_password"],
        "healthcheck": _health(
            ["CMD", "pg_isready", "-U", "growbin", "-d", "growbin"], interval=10
        ),
        "restart": "unless-stopped",
    }


def worker(d: ProfileDeploy) -> dict[str, Any]:
    service = _growbin(
        d.command(),
        _ready_for_growbin(),
        _health(["CMD", *d.probe(), "--quiet"], interval=30, retries=3, start=120),
    )
    service["volumes"] += [f"images:{IMAGE_DIR}", f"journal:{JOURNAL_DIR}"]
    service["deploy"] = {
        "replicas": d.min_replicas,
        "resources": {
            "limits": {
                "cpus": str(int(d.resources.cpu_limit.removesuffix("m")) / 1000),
                "memory": d.resources.memory_limit.replace("Mi", "M"),
            }
        },
    }
    # SIGTERM: finish the tasks held (up to the longest time limit), then the journal's
    # final sync; compose kills the container only after this
    service["stop_grace_period"] = f"{d.grace_seconds}s"
    service["restart"] = "unless-stopped"
    return service


def beat() -> dict[str, Any]:
    # Beat has no probe of its own: it exits on a fatal error (and is restarted); this checks
    # that its process is up (PID 1 is tini). The Redis leader lock makes one of the two send.
    alive = (
        "import os, sys; sys.exit(0 if any(b'beat' in open(f'/proc/{p}/cmdline', 'rb').read() "
        "for p in os.listdir('/proc') if p.isdigit() and p not in ('1', str(os.getpid()))) "
        "else 1)"
    )
    service = _growbin(
        ["growbin", "beat"], _ready_for_growbin(), _health(["CMD", "python", "-c", alive])
    )
    service["deploy"] = {"replicas": BEATS}
    service["restart"] = "unless-stopped"
    return service


def api() -> dict[str, Any]:
    service = _growbin(
        ["growbin", "api", "--host", "0.0.0.0", "--port", str(API_PORT)],  # noqa: S104
        _ready_for_growbin(),
        _health(_python_get(f"http://127.0.0.1:{API_PORT}/readyz")),
    )
    service["volumes"] += [f"images:{IMAGE_DIR}"]
    service["ports"] = [f"{API_PORT}:{API_PORT}"]
    service["restart"] = "unless-stopped"
    return service


def one_shot(command: list[str], depends_on: dict[str, Any]) -> dict[str, Any]:
    service = _growbin(command, depends_on, None)
    # a one-shot's health is its exit status; the others wait for service_completed_successfully
    service["healthcheck"] = {"disable": True}
    service["restart"] = "no"
    return service


def flower() -> dict[str, Any]:
    service = _growbin(
        ["celery", "-A", "growbin", "flower", f"--port={FLOWER_PORT}"],
        {node: dict(HEALTHY) for node in RABBITMQ_NODES} | {"topology-apply": dict(DONE)},
        _health(_python_get(f"http://127.0.0.1:{FLOWER_PORT}/healthcheck")),
    )
    # FLOWER_BASIC_AUTH comes from the env file. Flower's /metrics bypasses its auth: the
    # port is published on the loopback interface only.
    service["env_file"] = [GROWBIN_ENV_FILE, FLOWER_ENV_FILE]
    service["ports"] = [f"127.0.0.1:{FLOWER_PORT}:{FLOWER_PORT}"]
    service["restart"] = "unless-stopped"
    return service


def prometheus() -> dict[str, Any]:
    return {
        "image": PROMETHEUS_IMAGE,
        "volumes": [
            "../prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            "../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
            "prometheus-data:/prometheus",
        ],
        # prometheus.yml reads the API's admin token from this file
        "secrets": [{"source": "api_metrics_token", "target": "/etc/prometheus/growbin-api-token"}],
        "ports": ["127.0.0.1:9090:9090"],
        "healthcheck": _health(["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1:9090/-/healthy"]),
        "depends_on": {"alertmanager": dict(HEALTHY)},
        "restart": "unless-stopped",
    }


def alertmanager() -> dict[str, Any]:
    return {
        "image": ALERTMANAGER_IMAGE,
        "command": [
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/alertmanager",
        ],
        "volumes": [
            "../alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro",
            "alertmanager-data:/alertmanager",
        ],
        "secrets": ["slack_api_url"],
        "ports": ["127.0.0.1:9093:9093"],
        "healthcheck": _health(["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1:9093/-/healthy"]),
        "restart": "unless-stopped",
    }


def grafana() -> dict[str, Any]:
    return {
        "image": GRAFANA_IMAGE,
        "environment": {
            "GF_SECURITY_ADMIN_USER": "admin",
            "GF_SECURITY_ADMIN_PASSWORD__FILE": "/run/secrets/grafana_admin_password",
            "GF_USERS_ALLOW_SIGN_UP": "false",
        },
        "volumes": [
            "./grafana/provisioning:/etc/grafana/provisioning:ro",
            "../grafana/dashboard.json:/etc/grafana/dashboards/growbin.json:ro",
            "grafana-data:/var/lib/grafana",
        ],
        "secrets": ["grafana_admin_password"],
        "ports": ["127.0.0.1:3000:3000"],
        "healthcheck": _health(
            ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1:3000/api/health"]
        ),
        "depends_on": {"prometheus": dict(HEALTHY)},
        "restart": "unless-stopped",
    }


def compose(loaded: LoadedTopology) -> dict[str, Any]:
    deploys = profile_deploys(loaded)
    services: dict[str, Any] = {}
    for i, node in enumerate(RABBITMQ_NODES):
        services[node] = rabbitmq(node, first=i == 0)
    services["redis"] = redis()
    services["postgres"] = postgres()
    services["db-upgrade"] = one_shot(["growbin", "db", "upgrade"], {"postgres": dict(HEALTHY)})
    services["topology-apply"] = one_shot(
        ["growbin", "topology", "apply"], {node: dict(HEALTHY) for node in RABBITMQ_NODES}
    )
    services["api"] = api()
    for d in deploys:
        services[d.service] = worker(d)
    services["beat"] = beat()
    services["flower"] = flower()
    services["alertmanager"] = alertmanager()
    services["prometheus"] = prometheus()
    services["grafana"] = grafana()
    volumes = [f"{node}-data" for node in RABBITMQ_NODES] + [
        "redis-data",
        "postgres-data",
        "images",
        "journal",
        "prometheus-data",
        "alertmanager-data",
        "grafana-data",
    ]
    return {
        "name": "growbin",
        "services": services,
        "volumes": {name: {} for name in volumes},
        "secrets": {name: {"file": f"./secrets/{name}"} for name in SECRETS},
    }


def _notes(deploys: list[ProfileDeploy]) -> str:
    lines = [
        "# Before the first `docker compose up`: ./make-secrets.sh (see deploy/README.md).",
        "# Workers (replicas = the topology's; stop grace = longest task + final journal sync):",
    ]
    for d in deploys:
        lines.append(
            f"#   {d.service}: {d.min_replicas} x {d.profile.pool.value} "
            f"{d.profile.concurrency} on {', '.join(d.profile.queues)}; "
            f"stop_grace_period {d.grace_seconds}s"
        )
    return "\n".join(lines) + "\n"


def render_compose(loaded: LoadedTopology) -> dict[str, str]:
    """The generated files, keyed by their path under deploy/compose."""
    deploys = profile_deploys(loaded)
    command = render_command(loaded, "compose", OUT)
    return {
        COMPOSE_FILE: header("Growbin on one host (Docker Compose)", loaded, command)
        + _notes(deploys)
        + dump([compose(loaded)]),
        TOPOLOGY_FILE: header("The topology every Growbin container reads", loaded, command)
        + topology_text(loaded),
    }
