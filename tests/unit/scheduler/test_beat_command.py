"""`growbin beat` refuses to start without Redis, where its lock lives."""

import pytest
from pydantic import SecretStr

from growbin.errors import ServiceUnavailableError
from growbin.scheduler.commands import run_beat
from growbin.scheduler.config import BeatConfig
from growbin.settings import Settings
from growbin.topology import loader


def test_beat_without_redis_is_refused_naming_the_variable():
    settings = Settings(redis_url=SecretStr("redis://127.0.0.1:9/0"))
    with pytest.raises(ServiceUnavailableError, match="GROWBIN_REDIS_URL"):
        run_beat(settings, loader.load("production"), BeatConfig())
