"""cache_cleanup against the real Redis (db 15 by default): SCAN, TTL check and delete."""

import uuid

import pytest
import redis
from pydantic import SecretStr

from growbin.jobs import cleanup
from growbin.runtime.celery_app import create_app
from growbin.runtime.kv import RedisKV
from growbin.scan.context import ScanContext, attach_scan_context
from growbin.settings import Settings
from growbin.topology import loader

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def keys(client):
    """Keys unique to this test, under the real patterns; all removed afterwards."""
    tag = uuid.uuid4().hex
    names = {
        "leaked_cache": f"growbin:cache:vision:{tag}:",
        "live_cache": f"growbin:cache:vision:{tag}:bottle",
        "leaked_step": f"growbin:scan:{tag}:classify",
        "live_step": f"growbin:scan:{tag}:rules",
        "elsewhere": f"growbin:stats:{tag}",
    }
    for name, key in names.items():
        client.set(key, "{}", ex=3600 if name.startswith("live") else None)
    yield names
    client.delete(*names.values())


def make_app(tmp_path, redis_url, **overrides):
    settings = Settings(
        database_url=SecretStr(f"sqlite:///{tmp_path / 'x.db'}"),
        image_dir=str(tmp_path / "images"),
        providers="offline",
        broker_url=SecretStr("memory://"),
        result_backend_url=SecretStr("cache+memory://"),
        redis_url=SecretStr(redis_url),
        **overrides,
    )
    app = create_app(settings, loader.load("production"), registrars=(cleanup.register,))
    attach_scan_context(app, ScanContext.build(settings, kv=RedisKV(redis_url)))
    return app


def test_cache_cleanup_removes_cache_and_step_keys_that_have_no_expiry(
    tmp_path, redis_url, client, keys
):
    app = make_app(tmp_path, redis_url)

    result = app.tasks["growbin.jobs.cache_cleanup"]()

    assert result["backend"] == "redis"
    patterns = result["patterns"]
    assert set(patterns) == {"growbin:cache:*", "growbin:scan:*"}
    assert patterns["growbin:cache:*"]["removed"] >= 1
    assert patterns["growbin:scan:*"]["removed"] >= 1
    assert patterns["growbin:cache:*"]["scanned"] >= 2
    left = {name for name, key in keys.items() if client.exists(key)}
    assert left == {"live_cache", "live_step", "elsewhere"}
    assert 0 < client.ttl(keys["live_cache"]) <= 3600


def test_cache_cleanup_leaves_cache_entries_alone_when_the_cache_ttl_is_zero(
    tmp_path, redis_url, client, keys
):
    app = make_app(tmp_path, redis_url, scan_cache_ttl=0)

    result = app.tasks["growbin.jobs.cache_cleanup"]()

    assert set(result["patterns"]) == {"growbin:scan:*"}
    assert "GROWBIN_SCAN_CACHE_TTL=0" in result["note"]
    assert client.exists(keys["leaked_cache"])
    assert not client.exists(keys["leaked_step"])
