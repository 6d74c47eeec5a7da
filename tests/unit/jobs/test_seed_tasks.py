"""The seeds' remaining tasks: analytics.save (seed 002) and external.call (seed 000)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import select

from growbin.errors import FatalTaskError
from growbin.jobs.external import call_external
from growbin.jobs.stats_records import ScanDailyStat
from growbin.runtime.failures import is_transient
from growbin.scan.providers import ProviderRejectedError, ProviderUnavailableError
from growbin.topology import loader
from growbin.topology.resolve import resolve_route

SAVE = "growbin.jobs.analytics_save"
CALL = "growbin.jobs.external_call"


def test_analytics_save_files_a_scan_into_its_days_aggregate_twice_the_same(app, ctx, add_scan):
    scan = add_scan(datetime(2026, 11, 25, 23, 0, tzinfo=UTC), item="can", confidence=0.9)
    add_scan(datetime(2026, 11, 25, 1, 0, tzinfo=UTC), item="can", confidence=0.5)

    first = app.tasks[SAVE](scan.id)
    again = app.tasks[SAVE](scan.id)

    assert first == again == {"scan_id": scan.id, "day": "2026-11-25", "items": 1}
    with ctx.session() as session:
        rows = session.scalars(select(ScanDailyStat).where(ScanDailyStat.day == date(2026, 11, 25)))
        assert [(r.item, r.scans, r.done) for r in rows] == [("can", 2, 2)]


def test_analytics_save_of_an_unknown_scan_is_dead_lettered_naming_it(app, dead_letters):
    with pytest.raises(FatalTaskError, match="no scan 'nope'"):
        app.tasks[SAVE]("nope")
    assert dead_letters and dead_letters[0]["retryable"] is False


def answering(status: int, **kwargs: object) -> httpx.MockTransport:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, **kwargs)  # type: ignore[arg-type]

    transport = httpx.MockTransport(handler)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


def test_external_call_returns_the_answer_and_sends_the_idempotency_key():
    transport = answering(200, json={"ok": True})
    result = call_external(
        "https://api.example.test/v1/things",
        method="post",
        json={"a": 1},
        idempotency_key="k-1",
        transport=transport,
    )
    assert result == {
        "status": 200,
        "url": "https://api.example.test/v1/things",
        "json": {"ok": True},
    }
    (request,) = transport.seen  # type: ignore[attr-defined]
    assert request.method == "POST" and request.headers["Idempotency-Key"] == "k-1"


def test_an_outage_of_the_far_api_is_retried_and_a_4xx_is_not():
    with pytest.raises(ProviderUnavailableError) as outage:
        call_external("https://api.example.test/x", transport=answering(503))
    assert is_transient(outage.value)
    with pytest.raises(ProviderRejectedError) as refused:
        call_external("https://api.example.test/x", transport=answering(404))
    assert not is_transient(refused.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "file:///etc/passwd"}, "absolute http"),
        ({"url": "https://x.test/", "method": "TRACE"}, "method 'TRACE'"),
        ({"url": "https://x.test/", "timeout": 600}, "timeout=600"),
    ],
)
def test_external_call_refuses_bad_arguments_at_once(app, dead_letters, kwargs, message):
    with pytest.raises(FatalTaskError, match=message):
        app.tasks[CALL](**kwargs)
    assert dead_letters[0]["retryable"] is False


@pytest.mark.parametrize(
    ("preset", "save_queue", "call_queue"),
    [
        ("production", "q.batch", "q.api"),
        ("slo", "q.bulk", "q.external"),
        ("pipeline", "maintenance", "external_api"),
    ],
)
def test_every_preset_routes_the_seed_tasks_to_their_lanes(preset, save_queue, call_queue):
    topology = loader.load(preset).topology
    save, call = resolve_route(topology, SAVE), resolve_route(topology, CALL)
    assert save is not None and save.queue == save_queue
    assert call is not None and call.queue == call_queue
