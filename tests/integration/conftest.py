"""Shared fixtures for tests against the real services on this machine.

A missing service skips the tests locally and fails them in CI (CI=true), so a broken CI
machine never passes by skipping everything.
"""

import os
import uuid

import pytest
from tests.integration.services import PrivateRedis, ServiceBinaryMissingError, TempPostgres

from growbin.errors import BrokerApiError, ServiceUnavailableError
from growbin.settings import DEFAULT_RABBITMQ_API_URL
from growbin.topology.broker_api import BrokerApi


def service_missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: integration tests need their services running)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rabbitmq_api_url() -> str:
    return os.environ.get("GROWBIN_RABBITMQ_API_URL", DEFAULT_RABBITMQ_API_URL)


@pytest.fixture(scope="session")
def broker_api(rabbitmq_api_url):
    api = BrokerApi(rabbitmq_api_url)
    try:
        api.overview()
    except (ServiceUnavailableError, BrokerApiError) as exc:
        api.close()
        service_missing(str(exc))
    yield api
    api.close()


@pytest.fixture
def vhost_name(broker_api, request):
    """A unique vhost name, not yet created; whatever exists under it is deleted afterwards."""
    name = f"growbin-test-{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: broker_api.delete_vhost(name, missing_ok=True))
    return name


@pytest.fixture
def temp_vhost(broker_api, vhost_name):
    """A fresh, empty vhost that the API user (guest) may use fully."""
    broker_api.put_vhost(vhost_name, description="growbin integration test; safe to delete")
    broker_api.put_permissions(vhost_name, "guest", configure=".*", write=".*", read=".*")
    return vhost_name


REDIS_TEST_URL = os.environ.get("GROWBIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing(f"Redis is not reachable at {REDIS_TEST_URL}: {exc}")
    finally:
        client.close()
    return REDIS_TEST_URL


@pytest.fixture
def service_env(temp_vhost, rabbitmq_api_url, redis_url, tmp_path):
    """GROWBIN_* variables pointing a worker or app at the test vhost and Redis."""
    return {
        "GROWBIN_ENV": "test",
        # each test's workers keep their journals in the test's own directory
        "GROWBIN_JOURNAL_PATH": str(tmp_path / "journal" / "{hostname}.db"),
        "GROWBIN_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{temp_vhost}",
        "GROWBIN_RABBITMQ_API_URL": rabbitmq_api_url,
        "GROWBIN_REDIS_URL": redis_url,
    }


@pytest.fixture
def start_worker(service_env, tmp_path):
    """Start `growbin worker` processes; all are killed at the end, pass or fail."""
    from tests.integration.workers import WorkerProcess

    started: list[WorkerProcess] = []

    def start(profile: str, topology: str, *extra: str, env: dict[str, str] | None = None):
        worker = WorkerProcess.start(
            profile, topology, {**service_env, **(env or {})}, tmp_path, extra
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


POSTGRES_ADMIN_URL = os.environ.get(
    "GROWBIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def database_url():
    """A fresh PostgreSQL database for this test session, migrated to head, dropped at the end.

    Yields its SQLAlchemy URL (postgresql+psycopg://...).
    """
    import psycopg
    from sqlalchemy import make_url

    from growbin.db.migrate import upgrade
    from growbin.settings import load_settings

    name = f"growbin_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_missing(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = (
        make_url(POSTGRES_ADMIN_URL)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )
    try:
        upgrade(load_settings(env="test"), url=url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_redis():
    """`redis-server` on a free port, started, without persistence (a kill empties it)."""
    try:
        server = PrivateRedis()
    except ServiceBinaryMissingError as exc:
        service_missing(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def private_postgres():
    """A fresh PostgreSQL cluster (initdb) on a free port, started, with no schema yet."""
    try:
        cluster = TempPostgres.create()
    except ServiceBinaryMissingError as exc:
        service_missing(str(exc))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
