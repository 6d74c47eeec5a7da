"""Guard tests run real `growbin worker` processes on the execution topology, in a fresh vhost.

Each test's guards use a Redis key prefix of their own, so tests (and other test sessions on
this machine) never share a limit, a breaker or an idempotency key.
"""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from tests.integration.guard.tasks import runs_key

from growbin.fakes.openai_server import FakeOpenAI
from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.settings import load_settings
from growbin.topology import loader
from growbin.topology.plan import apply

TOPOLOGY = "tests/fixtures/topologies/execution.yaml"
TASK_MODULES = "tests.integration.tasks,tests.integration.guard.tasks"


@pytest.fixture
def env(broker_api, temp_vhost, service_env):
    loaded = loader.load(TOPOLOGY)
    apply(loaded.topology.model_copy(update={"vhost": temp_vhost}), broker_api)
    return {**service_env, "GROWBIN_TOPOLOGY": TOPOLOGY, "GROWBIN_TASK_MODULES": TASK_MODULES}


@pytest.fixture
def app(env):
    settings = load_settings(
        broker_url=env["GROWBIN_BROKER_URL"],
        redis_url=env["GROWBIN_REDIS_URL"],
        topology=TOPOLOGY,
        task_modules=TASK_MODULES,
    )
    celery_app = create_app(settings, loader.load(TOPOLOGY), registrars=registrars(settings))
    yield celery_app
    celery_app.close()


@pytest.fixture
def prefix(redis_url):
    """A Redis key prefix for this test's guards; its keys are deleted afterwards."""
    name = f"growbin-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for pattern in (f"{name}:*", f"{runs_key(name)}*", f"linger*:{name}*"):
        for key in client.scan_iter(pattern, count=10_000):
            client.delete(key)
    client.close()


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake


def runs(r, prefix: str) -> list[dict]:
    """Every run of guarded_text so far (deferred ones included), oldest first."""
    return [json.loads(x) for x in r.lrange(runs_key(prefix), 0, -1)]
