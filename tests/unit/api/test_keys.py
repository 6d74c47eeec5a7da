"""API keys: their shape, their hash, and the secret they are hashed with."""

from __future__ import annotations

import logging

import pytest

from growbin.api import keys
from growbin.errors import ConfigError
from growbin.settings import Environment, Settings


def test_a_new_key_carries_its_prefix_and_a_long_random_secret():
    prefix, key = keys.new_key()
    assert key.startswith(f"gb_{prefix}_")
    assert len(prefix) == 8
    assert len(key.split("_", 2)[2]) >= 40
    assert keys.looks_like_key(key)
    assert keys.new_key()[1] != key


@pytest.mark.parametrize(
    "text", ["", "gb_", "gb_1234567_" + "a" * 43, "xx_12345678_" + "a" * 43, "gb_12345678_short"]
)
def test_malformed_keys_are_told_apart_before_any_lookup(text):
    assert not keys.looks_like_key(text)


def test_the_stored_hash_depends_on_the_secret_and_is_not_the_key():
    _, key = keys.new_key()
    one, other = keys.hash_key(b"secret-one", key), keys.hash_key(b"secret-two", key)
    assert one != other
    assert key not in one
    assert len(one) == 64


def test_an_empty_secret_falls_back_to_the_development_one_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert keys.api_secret(Settings(env=Environment.TEST)) == keys.DEV_SECRET
    assert "GROWBIN_API_SECRET is empty" in caplog.text


def test_outside_development_an_empty_secret_is_refused_naming_the_variable():
    settings = Settings.model_construct(
        env=Environment.PRODUCTION, api_secret=Settings().api_secret
    )
    with pytest.raises(ConfigError, match="GROWBIN_API_SECRET"):
        keys.api_secret(settings)


def test_a_set_secret_is_used_as_it_is():
    assert keys.api_secret(Settings(api_secret="s3cret")) == b"s3cret"


def test_scopes_default_to_scans_and_unknown_ones_are_refused():
    assert keys.check_scopes([]) == ["scans"]
    assert keys.check_scopes(["admin", "ADMIN", " scans "]) == ["admin", "scans"]
    with pytest.raises(keys.ApiKeyError, match="scans or admin"):
        keys.check_scopes(["root"])
