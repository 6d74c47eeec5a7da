from __future__ import annotations

import pytest

from growbin.errors import TopologyError
from growbin.topology import loader
from growbin.topology.model import RateLimit

BASE = """
version: 1
name: t
"""


@pytest.mark.parametrize("preset", loader.PRESETS)
def test_every_preset_limits_the_seed_models_to_the_seed_quotas(preset):
    limits = loader.load(preset).topology.rate_limits
    assert limits["openai.gpt-5"].rate == 100 and limits["openai.gpt-5"].per == 60
    assert limits["openai.gpt-4o-mini"].rate == 200 and limits["openai.gpt-4o-mini"].per == 60


def test_production_and_pipeline_have_a_breaker_for_openai():
    for preset in ("production", "pipeline"):
        assert loader.load(preset).topology.breakers["openai"].failures == 5


def test_rate_is_a_hard_cap_so_the_burst_slows_the_sustained_pace():
    # (rate + 1) calls must span `per`: burst back to back, the rest one interval apart
    limit = RateLimit(rate=100, per=60, burst=5)
    assert limit.interval == pytest.approx(60 / 96)
    assert (limit.burst - 1) * limit.interval + (
        limit.rate + 1 - limit.burst
    ) * limit.interval >= 60


def test_a_burst_above_the_rate_is_refused_with_the_fix():
    with pytest.raises(TopologyError, match="burst \\(20\\) must not exceed rate \\(10\\)"):
        loader.parse(BASE + "rate_limits:\n  openai.gpt-5: {rate: 10, burst: 20}\n")


def test_an_unknown_breaker_key_is_refused_with_a_suggestion():
    with pytest.raises(TopologyError, match="did you mean 'failures'"):
        loader.parse(BASE + "breakers:\n  openai: {failure: 3}\n")


def test_guard_sections_round_trip_through_show():
    text = BASE + (
        "rate_limits:\n  openai.gpt-5: {rate: 100, per: 60, burst: 5}\n"
        "breakers:\n  openai: {failures: 3, window: 30, reset_after: 10}\n"
    )
    topology = loader.parse(text).topology
    assert loader.parse(loader.dump(topology)).topology == topology
