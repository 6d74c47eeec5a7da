from __future__ import annotations

import json

import pytest
from tests.unit.guard.conftest import REDIS_TEST_URL
from typer.testing import CliRunner

from growbin.guard.commands import guard_app
from growbin.guard.providers import GuardConfig, Guards
from growbin.topology import loader

TOPOLOGY = """
version: 1
name: guard-cli
rate_limits:
  openai.gpt-5: {rate: 100, per: 60, burst: 5}
breakers:
  openai: {failures: 2, window: 60, reset_after: 30}
"""


@pytest.fixture
def cli(store, tmp_path, monkeypatch):
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY)
    monkeypatch.setenv("GROWBIN_TOPOLOGY", str(path))
    monkeypatch.setenv("GROWBIN_REDIS_URL", REDIS_TEST_URL)
    monkeypatch.setenv("COLUMNS", "200")
    guards = Guards(store, GuardConfig.from_topology(loader.load(str(path)).topology))

    def invoke(*args: str):
        result = CliRunner().invoke(guard_app, [*args, "--prefix", store.prefix])
        assert result.exit_code == 0, result.output
        return result.output

    return guards, invoke


def test_status_shows_each_limits_free_calls_and_each_breakers_state_as_json(cli):
    guards, invoke = cli
    for _ in range(6):
        guards.limiter.acquire("openai.gpt-5")
    breaker = guards.breakers["openai"]
    for _ in range(2):
        breaker.record(breaker.allow(), failed=True)
    data = json.loads(invoke("status", "--format", "json"))
    [limit] = data["rate_limits"]
    assert (limit["name"], limit["tokens"], limit["allowed"], limit["throttled"]) == (
        "openai.gpt-5",
        0,
        5,
        1,
    )
    assert 0 < limit["next_free"] <= 60 / 96
    [state] = data["breakers"]
    assert state["state"] == "open" and 29 < state["retry_after"] <= 30


def test_status_as_text_names_the_limit_and_the_open_breaker(cli):
    guards, invoke = cli
    breaker = guards.breakers["openai"]
    for _ in range(2):
        breaker.record(breaker.allow(), failed=True)
    output = invoke("status")
    assert "openai.gpt-5" in output and "100 / 60s" in output
    assert "open (probe in" in output


def test_log_lists_throttled_calls_per_minute(cli):
    guards, invoke = cli
    for _ in range(7):
        guards.limiter.acquire("openai.gpt-5")
    [row] = json.loads(invoke("log", "--format", "json"))
    assert (row["limit"], row["count"]) == ("openai.gpt-5", 2)


def test_reset_closes_a_breaker(cli):
    guards, invoke = cli
    breaker = guards.breakers["openai"]
    for _ in range(2):
        breaker.record(breaker.allow(), failed=True)
    assert "breaker openai closed" in invoke("reset", "openai")
    assert breaker.status().state.value == "closed"


def test_reset_of_an_unknown_name_lists_the_known_ones(cli, store):
    result = CliRunner().invoke(guard_app, ["reset", "kakao", "--prefix", store.prefix])
    assert result.exit_code != 0
    assert "openai.gpt-5" in result.output
