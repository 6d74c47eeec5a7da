"""`growbin status`: figures from the management API, profiles from hostnames, one screen."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from rich.console import Console

from growbin.errors import GrowbinError, ServiceUnavailableError
from growbin.ops import status as st
from growbin.runtime.progress import ProgressRecord
from growbin.settings import Settings
from growbin.topology import loader

PRODUCTION = loader.load("production").topology


class FakeApi:
    def queue_details(self, vhost):
        assert vhost == "/"
        return [
            {
                "name": "q.ai",
                "messages": 1200,
                "messages_ready": 1150,
                "messages_unacknowledged": 50,
                "consumers": 0,
                "message_stats": {
                    "publish_details": {"rate": 12.5},
                    "deliver_get_details": {"rate": 3.0},
                    "ack_details": {"rate": 2.9},
                },
            },
            {"name": "q.dlq", "messages": 7, "consumers": 0},
            {"name": "someone.else", "messages": 1},
        ]


def test_queue_figures_and_rates_come_from_the_management_api():
    rows = {q.name: q for q in st.queue_statuses(FakeApi(), PRODUCTION)}
    assert list(rows) == list(PRODUCTION.queues)  # the topology's queues, in its order
    ai = rows["q.ai"]
    assert (ai.messages, ai.ready, ai.unacked, ai.consumers) == (1200, 1150, 50, 0)
    assert (ai.publish_rate, ai.deliver_rate, ai.ack_rate) == (12.5, 3.0, 2.9)
    assert ai.over_alert  # 1200 > q.ai's alert_depth of 1000
    assert rows["q.dlq"].publish_rate is None and not rows["q.dlq"].over_alert
    assert not rows["q.api"].exists


def test_workers_are_grouped_by_the_profile_prefix_of_their_hostname():
    replies = {
        "ai@node-1": [{"name": "q.ai"}],
        "ai@node-2": [{"name": "q.ai"}],
        "custom@node-3": [{"name": "q.custom"}],
    }
    profiles = {p.profile: p for p in st.group_profiles(replies, PRODUCTION)}
    assert list(profiles) == ["api", "ai", "batch", "custom"]
    assert profiles["ai"].hosts == ["ai@node-1", "ai@node-2"] and profiles["ai"].expected == 3
    assert profiles["api"].hosts == [] and profiles["api"].queues == ["q.api"]
    assert profiles["custom"].expected == 0 and profiles["custom"].queues == ["q.custom"]


def test_dead_letters_fall_back_to_the_queue_depth_when_the_archive_is_unreachable():
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    queues = st.queue_statuses(FakeApi(), PRODUCTION)
    counts, source, note = st.dead_letters_by_reason(settings, PRODUCTION, queues)
    assert counts == {"unknown": 7} and source == "queue"
    assert note and "archive unavailable" in note


def snapshot() -> st.Snapshot:
    return st.Snapshot(
        topology="production",
        vhost="/",
        queues=st.queue_statuses(FakeApi(), PRODUCTION),
        dead_letters={"failed": 5, "expired": 2},
        dead_letter_source="archive",
        profiles=st.group_profiles({"ai@node-1": [{"name": "q.ai"}]}, PRODUCTION),
    )


def test_the_screen_shows_queues_dead_letters_and_profiles():
    console = Console(record=True, width=140)
    console.print(st.render(snapshot()))
    text = console.export_text()
    for expected in ("q.ai", "1200", "12.5", "failed", "ai@node-1", "1/3", "0/2"):
        assert expected in text


def test_json_output_is_the_whole_snapshot(monkeypatch):
    monkeypatch.setattr(st, "take_snapshot", lambda *a, **k: snapshot())
    console = Console(record=True, width=200)
    st.status_command(Settings(), PRODUCTION, fmt="json", console=console)
    data = json.loads(console.export_text())
    assert data["dead_letters"] == {"failed": 5, "expired": 2}
    ai = next(q for q in data["queues"] if q["name"] == "q.ai")
    assert ai["messages"] == 1200 and ai["over_alert"] is True
    assert data["profiles"][1]["hosts"] == ["ai@node-1"]


def test_watch_refreshes_until_interrupted(monkeypatch):
    taken = []

    def take(*a, **k):
        taken.append(1)
        if len(taken) == 3:
            raise KeyboardInterrupt
        return snapshot()

    monkeypatch.setattr(st, "take_snapshot", take)
    st.status_command(Settings(), PRODUCTION, watch=True, interval=0.01, console=Console(file=None))
    assert len(taken) == 3


def test_an_unknown_format_is_refused_naming_the_choices():
    with pytest.raises(GrowbinError, match="use text or json"):
        st.status_command(Settings(), PRODUCTION, fmt="yaml")


def progress(worker: str, reserved: int, last_progress: float) -> ProgressRecord:
    profile = worker.split("@", 1)[0]
    return ProgressRecord(worker, profile, 1, reserved, 0, last_progress, 180.0, 1000.0)


def test_a_profile_with_a_worker_holding_messages_without_progress_is_flagged_stalled():
    replies = {"ai@node-1": [{"name": "q.ai"}], "ai@node-2": [{"name": "q.ai"}]}
    records = [progress("ai@node-1", 8, last_progress=0), progress("ai@node-2", 3, 990)]
    profiles = {p.profile: p for p in st.group_profiles(replies, PRODUCTION, records, now=1000)}
    ai = profiles["ai"]
    assert ai.progress == "stalled"
    assert [(w.worker, w.reserved, w.seconds) for w in ai.stalled] == [("ai@node-1", 8, 1000)]
    assert profiles["api"].progress == "unknown"  # no worker of it reports
    console = Console(record=True, width=200)
    console.print(st.render(replace(snapshot(), profiles=list(profiles.values()))))
    assert "stalled: ai@node-1 holds 8 (0 running), no progress for 1000 s" in console.export_text()


def test_progress_is_ok_for_a_busy_or_idle_worker_and_unknown_without_records():
    replies = {"ai@node-1": [{"name": "q.ai"}]}
    busy = [progress("ai@node-1", 8, last_progress=995)]
    ai = st.group_profiles(replies, PRODUCTION, busy, now=1000)[1]
    assert ai.profile == "ai" and ai.progress == "ok" and ai.stalled == []
    assert st.group_profiles(replies, PRODUCTION, None)[1].progress == "unknown"


def test_status_says_progress_is_unknown_when_redis_is_down():
    settings = Settings(redis_url="redis://:secret@127.0.0.1:1/0")
    records, note = st.worker_progress(settings)
    assert records is None
    assert note and "worker progress unknown: Redis is not reachable at" in note
    assert "secret" not in note and "redis://:****@127.0.0.1:1/0" in note


def test_with_the_whole_broker_down_status_names_rabbitmq_not_the_management_plugin():
    settings = Settings(
        broker_url="amqp://growbin:hunter2@127.0.0.1:1/prod",
        rabbitmq_api_url="http://growbin:hunter2@127.0.0.1:2/api",
        broker_connect_timeout=1.0,
    )
    with pytest.raises(ServiceUnavailableError) as caught:
        st.take_snapshot(settings, PRODUCTION)
    message = str(caught.value)
    assert message.startswith("RabbitMQ is not reachable at amqp://growbin:****@127.0.0.1:1/prod")
    assert "http://growbin:****@127.0.0.1:2/api" in message
    assert "rabbitmq-plugins" not in message and "hunter2" not in message


def test_with_amqp_up_but_no_management_api_status_advises_the_plugin(monkeypatch):
    import growbin.topology.verify as verify

    monkeypatch.setattr(verify, "broker_reachable", lambda url, timeout: True)
    settings = Settings(rabbitmq_api_url="http://guest:guest@127.0.0.1:2/api")
    with pytest.raises(ServiceUnavailableError, match="rabbitmq-plugins enable"):
        st.take_snapshot(settings, PRODUCTION)


def test_a_bug_in_the_archive_query_is_not_hidden_as_archive_unavailable(monkeypatch):
    def broken(*_a):
        raise AttributeError("'NoneType' object has no attribute 'state'")

    monkeypatch.setattr(st, "_archive_reasons", broken)
    queues = st.queue_statuses(FakeApi(), PRODUCTION)
    with pytest.raises(AttributeError):
        st.dead_letters_by_reason(Settings(), PRODUCTION, queues)
