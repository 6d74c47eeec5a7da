"""What /readyz tells an admin about Redis persistence, from CONFIG GET's answers."""

import redis

from growbin.api.readiness import redis_persistence


class FakeRedis:
    def __init__(self, config: dict[str, str] | None) -> None:
        self.config = config

    def config_get(self, name: str) -> dict[str, str]:
        if self.config is None:
            raise redis.ResponseError("unknown command 'CONFIG', with args beginning with: 'GET'")
        return {name: self.config[name]}


def test_aof_is_persistence_enough():
    assert redis_persistence(FakeRedis({"appendonly": "yes", "save": ""})) is None


def test_no_aof_and_no_snapshots_says_redis_does_not_persist():
    note = redis_persistence(FakeRedis({"appendonly": "no", "save": ""}))
    assert note is not None
    assert note.startswith("Redis does not persist (appendonly no, save '')")
    assert "appendonly yes" in note and "/result answers 404" in note


def test_snapshots_alone_are_named_with_what_a_crash_loses():
    note = redis_persistence(FakeRedis({"appendonly": "no", "save": "3600 1 300 100"}))
    assert note is not None and "only by RDB snapshots" in note


def test_a_disabled_config_command_says_persistence_is_unknown():
    note = redis_persistence(FakeRedis(None))
    assert note is not None
    assert note.startswith("whether Redis persists is unknown: CONFIG GET is disabled")
