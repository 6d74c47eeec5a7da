"""The API's /metrics: this process's metrics plus dead letters by reason from the archive."""

from __future__ import annotations

import logging

from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from growbin.ops import metrics as m
from growbin.ops.metrics_cluster import (
    DeadLetterCollector,
    api_registry,
    metrics_asgi_app,
    metrics_payload,
)
from growbin.settings import Settings

ROWS = [
    ("/", "q.dlq", "failed", "queued", 4),
    ("/", "q.dlq", "expired", "dropped", 1),
    ("/", "q.dlq", "failed", "replayed", 9),
]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_dead_letters_are_exposed_by_queue_reason_and_state():
    families = {f.name: f for f in DeadLetterCollector(lambda: ROWS).collect()}
    got = {
        (s.labels["reason"], s.labels["state"]): s.value
        for s in families["growbin_dead_letters"].samples
    }
    assert got == {("failed", "queued"): 4, ("expired", "dropped"): 1, ("failed", "replayed"): 9}
    assert families["growbin_dead_letter_archive_up"].samples[0].value == 1


def test_an_unreachable_archive_answers_the_scrape_with_archive_up_0(caplog):
    caplog.set_level(logging.WARNING, logger="growbin.metrics")  # a worker test may raise root's

    def down():
        raise ConnectionError("PostgreSQL is down")

    families = {f.name: f for f in DeadLetterCollector(down).collect()}
    assert families["growbin_dead_letters"].samples == []
    assert families["growbin_dead_letter_archive_up"].samples[0].value == 0
    assert "dead-letter archive unreadable" in caplog.text


def test_the_api_registry_carries_this_processs_metrics_and_the_archives(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    m.reset_metrics()
    try:
        m.record_provider_call("gpt-5", "ok")
        body, content_type = metrics_payload(api_registry(Settings(), counts=lambda: ROWS))
    finally:
        m.reset_metrics()
    found = samples(body.decode())
    assert found[("gpt_api_calls_total", (("model", "gpt-5"), ("status", "ok")))] == 1
    key = (
        "growbin_dead_letters",
        (("queue", "q.dlq"), ("reason", "failed"), ("state", "queued"), ("vhost", "/")),
    )
    assert found[key] == 4
    assert content_type.startswith("text/plain")


def test_the_asgi_app_mounts_in_a_starlette_api(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    api = Starlette(
        routes=[Mount("/metrics", app=metrics_asgi_app(Settings(), counts=lambda: ROWS))]
    )
    with TestClient(api) as client:
        response = client.get("/metrics/")
    assert response.status_code == 200
    assert "growbin_dead_letters" in response.text
