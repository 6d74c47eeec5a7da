"""The app factory: built without touching a service, and documented in OpenAPI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from growbin.api.app import create_api
from growbin.api.config import MULTIPART_OVERHEAD, ApiConfig
from growbin.scan.images import MAX_BYTES
from growbin.settings import Settings, load_settings
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
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/"),
    }
    assert all(op.get("tags") for op in operations.values())


def test_the_bearer_key_scheme_is_declared_and_required_outside_health(spec):
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, item in spec["paths"].items():
        for op in item.values():
            secured = any("ApiKey" in s for s in op.get("security", []))
            assert secured == (path not in ("/", "/healthz", "/readyz")), path


def test_a_scan_is_submitted_as_multipart_or_json_and_refusals_are_documented(spec):
    post = spec["paths"]["/v1/scans"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"202", "413", "415", "422", "503"} <= set(post["responses"])
    results = spec["paths"]["/result/{task_id}"]["get"]["responses"]
    assert {"200", "202", "404", "500"} <= set(results)


def offline_settings(**values):
    # unreachable services: the 413 and CORS answers come before anything is used
    return load_settings(
        env="test",
        broker_url="amqp://guest:guest@127.0.0.1:1//",
        redis_url="redis://127.0.0.1:1/0",
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
        **values,
    )


def test_growbin_api_variables_change_the_running_apis_behaviour(monkeypatch):
    monkeypatch.setenv("GROWBIN_API_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("GROWBIN_API_CORS_ORIGINS", "https://app.example")
    app = create_api(offline_settings(), loader.load("pipeline"))
    client = TestClient(app)  # no lifespan: nothing below needs the runtime

    too_big = client.post("/v1/scans", content=b"x" * 4096)
    preflight = client.options(
        "/v1/scans",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )

    assert too_big.status_code == 413
    assert "2,048 bytes" in too_big.text
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"


def test_without_growbin_api_variables_the_documented_defaults_apply():
    config = ApiConfig.from_settings(Settings())
    assert config.max_body_bytes == MAX_BYTES + MULTIPART_OVERHEAD
    assert config.cors_origins == ()


def test_a_trusted_network_that_is_not_a_cidr_is_refused():
    with pytest.raises(ValueError, match="not a network"):
        ApiConfig(fetch_trusted_networks=("intranet",))
