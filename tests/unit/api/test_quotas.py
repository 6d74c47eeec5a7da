"""Quota settings and overrides: parsed strictly, combined per key, routes sorted into families."""

from __future__ import annotations

import pytest

from growbin.api.config import ApiConfig
from growbin.api.quotas import KeyQuotas, Rate, family_of, overrides
from growbin.api_config import parse_family_rates, parse_rate
from growbin.errors import ConfigError


def test_the_default_quotas_fit_one_person():
    quotas = KeyQuotas.defaults(ApiConfig())
    assert quotas.rate == Rate(300, 60.0, 30)  # 5 a second, 30 back to back
    assert quotas.families["submit"] == Rate(60, 60.0, 30)
    assert quotas.families["events"] == Rate(30, 60.0, 30)
    assert (quotas.in_flight, quotas.delayed_in_flight, quotas.streams) == (30, 2, 5)


@pytest.mark.parametrize(
    ("text", "parsed"), [("300/m", (300, 60.0)), ("5/s", (5, 1.0)), (" 1000/h ", (1000, 3600.0))]
)
def test_rates_are_a_count_per_second_minute_or_hour(text, parsed):
    assert parse_rate(text) == parsed


@pytest.mark.parametrize("text", ["", "lots", "0/m", "-1/s", "5/d", "5", "1.5/s"])
def test_a_rate_that_is_not_one_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match=r"e\.g\. 300/m"):
        parse_rate(text)


def test_an_unknown_route_family_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="submit, read, events, admin"):
        parse_family_rates("uploads=5/m")


def test_a_bad_quota_variable_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="GROWBIN_API_QUOTA_RATE"):
        ApiConfig.load({}, quota_rate="fast")


def test_a_keys_overrides_replace_only_what_they_name():
    base = KeyQuotas.defaults(ApiConfig())
    stored = overrides(["600/m", "submit=120/m"], in_flight=100)
    assert stored == {"rate": "600/m", "families": {"submit": "120/m"}, "in_flight": 100}

    mine = base.overridden(stored)

    assert mine.rate == Rate(600, 60.0, 30)
    assert mine.families["submit"] == Rate(120, 60.0, 30)
    assert mine.families["events"] == base.families["events"]
    assert (mine.in_flight, mine.streams) == (100, base.streams)
    assert base.overridden(None) is base


def test_override_options_are_checked():
    assert overrides([]) is None
    with pytest.raises(ValueError, match="is not a rate"):
        overrides(["fast"])
    with pytest.raises(ValueError, match="--in-flight 0"):
        overrides([], in_flight=0)


@pytest.mark.parametrize(
    ("method", "path", "family"),
    [
        ("POST", "/v1/scans", "submit"),
        ("GET", "/solo/add", "submit"),
        ("GET", "/solo/group", "submit"),
        ("GET", "/v1/scans", "read"),
        ("GET", "/v1/scans/abc", "read"),
        ("GET", "/result/abc", "read"),
        ("GET", "/v1/scans/abc/events", "events"),
        ("GET", "/v1/admin/dlq", "admin"),
        ("GET", "/metrics", "admin"),
    ],
)
def test_each_route_belongs_to_one_family(method, path, family):
    assert family_of(method, path) == family
