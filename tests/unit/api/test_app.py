"""The app factory: built without touching a service, and documented in OpenAPI."""

from __future__ import annotations

import pytest

from growbin.api.app import create_api
from growbin.api.config import PROPOSED_VARIABLES, ApiConfig
from growbin.settings import Settings
from growbin.topology import loader


@pytest.fixture
def spec():
    # unreachable services: building the app (not starting it) must not need them
    settings = Settings(
        env="test",
        broker_url="amqp://guest:guest@127.0.0.1:1//",
        redis_url="redis://127.0.0.1:1/0",
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
    )
    return create_api(settings, loader.load("pipeline")).openapi()


def test_every_endpoint_is_documented_with_its_tag(spec):
    operations = {
        (method.upper(), path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }
    assert set(operations) == {
        ("POST", "/v1/scans"),
        ("GET", "/v1/scans"),
        ("GET", "/v1/scans/{scan_id}"),
        ("GET", "/v1/scans/{scan_id}/events"),
        ("GET", "/solo/add"),
        ("GET", "/solo/chain"),
        ("GET", "/solo/group"),
        ("GET", "/result/{task_id}"),
        ("GET", "/result/group/{group_id}"),
        ("GET", "/v1/admin/queues"),
        ("GET", "/v1/admin/dlq"),
        ("GET", "/v1/admin/dlq/{dead_letter_id}"),
        ("POST", "/v1/admin/dlq/replay"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    }
    assert all(op.get("tags") for op in operations.values())


def test_the_bearer_key_scheme_is_declared_and_required_outside_health(spec):
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, item in spec["paths"].items():
        for op in item.values():
            secured = any("ApiKey" in s for s in op.get("security", []))
            assert secured == (path not in ("/healthz", "/readyz")), path


def test_a_scan_is_submitted_as_multipart_or_json_and_refusals_are_documented(spec):
    post = spec["paths"]["/v1/scans"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"202", "413", "415", "422", "503"} <= set(post["responses"])
    results = spec["paths"]["/result/{task_id}"]["get"]["responses"]
    assert {"200", "202", "404", "500"} <= set(results)


def test_the_config_reads_api_fields_from_the_settings_when_they_exist():
    class WithApiFields(Settings):
        api_max_body_bytes: int = 2048
        api_fetch_allowed_hosts: tuple[str, ...] = ("Images.Example.",)

    config = ApiConfig.from_settings(WithApiFields())
    assert config.max_body_bytes == 2048
    assert config.fetch_allowed_hosts == ("images.example",)
    assert ApiConfig.from_settings(Settings()).max_body_bytes == ApiConfig().max_body_bytes
    assert "GROWBIN_API_MAX_BODY_BYTES" in PROPOSED_VARIABLES


def test_a_trusted_network_that_is_not_a_cidr_is_refused():
    with pytest.raises(ValueError, match="not a network"):
        ApiConfig(fetch_trusted_networks=("intranet",))
