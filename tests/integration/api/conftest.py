"""The API under test: a real uvicorn server on a free port, real services, real workers.

Each test gets its own vhost (with the topology applied), the session's PostgreSQL database,
and an API whose Celery app, engine and Redis client are built by its lifespan, as in
production. Keys are made with the same functions `growbin apikey create` uses.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.integration.api.rabbit_node import rabbit_node  # noqa: F401 - a fixture

from growbin.api.app import create_api
from growbin.api.config import ApiConfig
from growbin.api.keys import api_secret, create_key
from growbin.api.runtime import ApiRuntime
from growbin.api.serve import ServerThread
from growbin.settings import Settings, load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

TASK_MODULES = "tests.integration.tasks"
ROOMY_QUOTAS = {"quota_rate": "6000/m", "quota_burst": 300, "quota_family_rates": ""}
API_SECRET = "integration-test-api-secret"


def no_dns(host: str, port: int) -> list[str]:
    # tests never resolve real names: a lookup here means a guard let something through
    raise OSError(f"DNS is disabled in the API tests (asked for {host})")


def write_api_topology(path: Path) -> Path:
    """The pipeline preset, plus a route for the test tasks with quick retries."""
    data: dict[str, Any] = yaml.safe_load(loader.preset_path("pipeline").read_text())
    data["name"] = "api-test"
    data["routes"]["growbin.testing.*"] = {
        "exchange": "growbin",
        "routing_key": "input.testing",
        "retry": {"max_retries": 1, "backoff_base": 0.2, "backoff_max": 0.5},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class ApiUnderTest:
    url: str
    settings: Settings
    server: ServerThread
    env: dict[str, str]
    topology_path: str
    clients: list[httpx.Client] = field(default_factory=list)
    # the database lives for the whole session: owners are made unique to each API started
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def runtime(self) -> ApiRuntime:
        runtime = self.server.app.state.runtime
        assert isinstance(runtime, ApiRuntime)
        return runtime

    def owner(self, name: str) -> str:
        return f"{name}-{self.run_id}"

    def key(self, name: str, *scopes: str) -> str:
        """A new key for the user ``name`` (unique to this API run)."""
        with self.runtime.scans.session() as session:
            _, key = create_key(
                session,
                api_secret(self.settings),
                owner=self.owner(name),
                name="test",
                scopes=scopes,
            )
        return key

    def client(self, key: str | None = None, **options: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(options.pop("headers", {}))
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)
        self.clients.append(client)
        return client


def api_settings(
    service_env: dict[str, str], database_url: str, tmp_path: Path, topology: str, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "broker_url": service_env["GROWBIN_BROKER_URL"],
        "redis_url": service_env["GROWBIN_REDIS_URL"],
        "rabbitmq_api_url": service_env["GROWBIN_RABBITMQ_API_URL"],
        "database_url": database_url,
        "image_dir": str(tmp_path / "images"),
        "topology": topology,
        "task_modules": TASK_MODULES,
        "api_secret": API_SECRET,
    }
    return load_settings(**{**values, **overrides})


@pytest.fixture
def start_api(service_env, database_url, tmp_path) -> Iterator[Any]:
    """Start API servers: ``start_api(topology_path, config=..., apply_to=broker_api)``."""
    started: list[ApiUnderTest] = []

    def start(
        topology_path: Path | str,
        *,
        broker_api: Any = None,
        config: ApiConfig | None = None,
        settings: Settings | None = None,
    ) -> ApiUnderTest:
        loaded = loader.load(str(topology_path))
        if broker_api is not None:
            vhost = service_env["GROWBIN_BROKER_URL"].rsplit("/", 1)[-1]
            apply(loaded.topology.model_copy(update={"vhost": vhost}), broker_api)
        settings = settings or api_settings(service_env, database_url, tmp_path, str(topology_path))
        config = config or ApiConfig(
            sse_heartbeat=1.0,
            fetch_allowed_hosts=("127.0.0.1",),
            fetch_trusted_networks=("127.0.0.1/32",),
            # quotas on (every test goes through them), but roomy enough for tests that poll;
            # test_quotas.py tests the limits themselves
            **ROOMY_QUOTAS,
        )
        server = ServerThread(create_api(settings, loaded, config=config, resolver=no_dns))
        server.start()
        env = {
            **service_env,
            "GROWBIN_DATABASE_URL": database_url,
            "GROWBIN_IMAGE_DIR": settings.image_dir,
            "GROWBIN_TOPOLOGY": str(topology_path),
            "GROWBIN_TASK_MODULES": TASK_MODULES,
        }
        api = ApiUnderTest(server.url, settings, server, env, str(topology_path))
        started.append(api)
        return api

    yield start
    for api in started:
        for client in api.clients:
            client.close()
        api.server.stop()


@pytest.fixture
def api(start_api, broker_api, tmp_path) -> ApiUnderTest:
    """The API on the pipeline topology (plus test routes), applied to a fresh vhost."""
    return start_api(write_api_topology(tmp_path / "api-topology.yaml"), broker_api=broker_api)


def wait_until(probe: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
