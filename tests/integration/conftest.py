"""Shared fixtures for tests against the real services on this machine.

A missing service skips the tests locally and fails them in CI (CI=true), so a broken CI
machine never passes by skipping everything.
"""

import os
import uuid

import pytest

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
