"""`GET /`: the service name, its version and links, to anyone, and nothing more."""

from __future__ import annotations

from fastapi.testclient import TestClient

from growbin import __version__
from growbin.api.app import create_api
from growbin.settings import Settings
from growbin.topology import loader


def test_the_root_answers_the_service_its_version_and_links_without_a_key():
    settings = Settings(
        env="test",
        broker_url="amqp://guest:guest@127.0.0.1:1//",
        redis_url="redis://127.0.0.1:1/0",
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
    )
    # not entered as a context manager: the lifespan (which connects) does not run
    client = TestClient(create_api(settings, loader.load("production")))
    response = client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "service": "growbin",
        "version": __version__,
        "links": {
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": "/healthz",
            "ready": "/readyz",
            "scans": "/v1/scans",
            "console": "/console",
        },
    }
    # no detail about the deployment
    text = response.text
    assert "127.0.0.1" not in text and "production" not in text and "q." not in text
