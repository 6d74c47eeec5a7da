"""Tasks for the guard tests, loaded into real workers with GROWBIN_TASK_MODULES.

``growbin.testing.guarded_text`` makes one guidance call to a fake OpenAI server through
:class:`GuardedTextGenerator`, with the guards the test describes in ``spec`` (a Redis key
prefix of its own, limits, breakers), and reports each run in Redis: a test counts calls at
the fake and runs here.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery import Celery
from pydantic import SecretStr

from growbin.guard.providers import GuardConfig, GuardedTextGenerator, Guards
from growbin.runtime.task_base import DEFERRALS_HEADER, GrowbinTask, custom_header
from growbin.scan.providers.base import Classification
from growbin.scan.providers.openai_compat import OpenAIConfig, OpenAITextGenerator
from growbin.topology.model import BreakerPolicy, RateLimit

MODEL = "gpt-4o-mini"
CLASSIFICATION = Classification(
    category="metal", item="can", confidence=0.9, provider="test", model="test", offline=False
)


def runs_key(prefix: str) -> str:
    return f"guard-runs:{prefix}"


def spec_for(fake: Any, prefix: str, **extra: Any) -> dict[str, Any]:
    """What a test sends to guarded_text: where the fake is, and the guards to use."""
    return {"base_url": fake.base_url, "api_key": fake.api_key, "prefix": prefix, **extra}


_generators: dict[tuple[int, str], GuardedTextGenerator] = {}


def _generator(spec: dict[str, Any]) -> GuardedTextGenerator:
    cache_key = (os.getpid(), json.dumps(spec, sort_keys=True))
    found = _generators.get(cache_key)
    if found is not None:
        return found
    config = GuardConfig(
        rate_limits={k: RateLimit(**v) for k, v in spec.get("rate_limits", {}).items()},
        breakers={k: BreakerPolicy(**v) for k, v in spec.get("breakers", {}).items()},
        prefix=spec["prefix"],
    )
    guards = Guards.from_url(os.environ["GROWBIN_REDIS_URL"], config)
    inner = OpenAITextGenerator(
        OpenAIConfig(
            base_url=spec["base_url"],
            api_key=SecretStr(spec["api_key"]),
            text_model=MODEL,
            timeout=5,
        )
    )
    generator = GuardedTextGenerator(inner, guards.for_provider("openai", MODEL))
    _generators[cache_key] = generator
    return generator


def register(app: Celery) -> None:
    @app.task(name="growbin.testing.guarded_text", bind=True, shared=False)  # type: ignore[untyped-decorator]
    def guarded_text(self: GrowbinTask, spec: dict[str, Any], n: int) -> str:
        client = redis.Redis.from_url(os.environ["GROWBIN_REDIS_URL"])
        started = time.monotonic()
        outcome = "ok"
        try:
            text = _generator(spec).guidance(CLASSIFICATION, {"item": "can", "n": n}).text
        except Exception as exc:
            outcome = type(exc).__name__
            raise
        finally:
            run = {
                "n": n,
                "outcome": outcome,
                "seconds": time.monotonic() - started,
                "retries": int(self.request.retries or 0),
                "deferrals": int(custom_header(self.request, DEFERRALS_HEADER) or 0),
                "pid": os.getpid(),
                "at": time.time(),
            }
            client.rpush(runs_key(spec["prefix"]), json.dumps(run))
        linger = float(spec.get("linger_after_call", 0))
        # The idempotency test kills the worker here, after the paid call, before the ack.
        if linger and client.set(f"lingered:{spec['prefix']}:{n}", 1, nx=True):
            client.rpush(f"lingering:{spec['prefix']}", n)
            time.sleep(linger)
        client.close()
        return text
