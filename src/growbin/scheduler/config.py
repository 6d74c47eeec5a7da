"""The scheduler's settings, read from GROWBIN_BEAT_* (meant to move into Settings as is)."""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from growbin.errors import ConfigError


class BeatConfig(BaseSettings):
    """How `growbin beat` elects its one active scheduler.

    The active scheduler holds a Redis key for ``lock_timeout`` seconds and renews it every
    third of that; a standby tries to take it every ``standby_poll`` seconds. A scheduler that
    dies is replaced within ``lock_timeout + standby_poll`` seconds. Shorter is faster takeover,
    but an active scheduler stalled longer than the timeout (a long GC pause, a frozen VM)
    loses the lock; it can then no longer send anything (every send checks the lock), so the
    cost is a takeover, never a doubled tick.
    """

    model_config = SettingsConfigDict(env_prefix="GROWBIN_BEAT_", extra="ignore")

    lock_timeout: float = Field(default=30.0, ge=1.0)
    standby_poll: float = Field(default=1.0, gt=0)
    publish_retry: float = Field(
        default=5.0, gt=0, description="seconds before a send the broker refused is tried again"
    )
    key_prefix: str = "growbin:beat"

    @classmethod
    def load(cls, **overrides: object) -> BeatConfig:
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            lines = [
                f"GROWBIN_BEAT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} "
                f"(got {e.get('input')!r})"
                for e in exc.errors()
            ]
            raise ConfigError("invalid beat settings:\n  - " + "\n  - ".join(lines)) from None

    @property
    def renew_interval(self) -> float:
        return self.lock_timeout / 3

    def namespace(self, topology_name: str, broker_url: str) -> str:
        """Keys shared by the schedulers of one deployment: one topology on one vhost."""
        from growbin.topology.vhost import broker_vhost

        vhost = broker_vhost(broker_url)
        return f"{self.key_prefix}:{topology_name}:{vhost}"
