"""The journal's settings: one small object with defaults, read from GROWBIN_JOURNAL_*.

These are meant to move into :class:`growbin.settings.Settings` under the same names (for
example ``journal_path`` for ``GROWBIN_JOURNAL_PATH``); until then :meth:`JournalConfig.load`
reads them from the environment itself, once, at the edge (worker start, the CLI).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from growbin.errors import ConfigError

HOSTNAME_PLACEHOLDER = "{hostname}"


class JournalConfig(BaseSettings):
    """How a worker keeps its journal.

    ``synchronous``: with WAL, NORMAL fsyncs only at checkpoints, so a commit survives a crash
    of the process (kill -9, OOM) but the last commits before a power loss or kernel panic may
    be lost; FULL fsyncs the WAL at every commit, so a commit survives a power loss too, at the
    price of one fsync per batch.
    """

    model_config = SettingsConfigDict(env_prefix="GROWBIN_JOURNAL_", extra="ignore")

    enabled: bool = True
    path: str = Field(
        default=f".growbin/journal/{HOSTNAME_PLACEHOLDER}.db",
        description="the SQLite file; {hostname} becomes the worker's name (profile@host)",
    )
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    batch_size: int = Field(
        default=200, ge=1, description="pending events that make the writer commit at once"
    )
    flush_interval: float = Field(
        default=0.05, gt=0, description="seconds an event may wait in memory before its commit"
    )
    commit_before_ack: bool = Field(
        default=True,
        description="a task's last event (succeeded, failed, retried) is committed before the "
        "task is acked, so the broker never forgets a task the journal has not recorded",
    )
    commit_wait_timeout: float = Field(default=5.0, gt=0)
    busy_timeout: float = Field(default=10.0, gt=0, description="seconds to wait for a lock")
    wal_autocheckpoint: int = Field(default=1000, ge=0, description="pages (the seed's 1000)")
    sync_interval: float = Field(
        default=300.0, ge=0, description="seconds between a worker's syncs; 0 turns them off"
    )
    sync_batch_size: int = Field(default=500, ge=1)
    checkpoint_interval: float = Field(default=3600.0, ge=0)
    retention: float = Field(
        default=7 * 24 * 3600.0, gt=0, description="seconds a synced, finished row is kept"
    )

    @classmethod
    def load(cls, **overrides: object) -> JournalConfig:
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            lines = [
                f"GROWBIN_JOURNAL_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} "
                f"(got {e.get('input')!r})"
                for e in exc.errors()
            ]
            raise ConfigError("invalid journal settings:\n  - " + "\n  - ".join(lines)) from None

    def path_for(self, hostname: str | None = None) -> Path:
        """The journal file of the worker named ``hostname`` (default: this machine)."""
        name = hostname or socket.gethostname()
        return Path(self.path.replace(HOSTNAME_PLACEHOLDER, _safe(name))).expanduser()

    def directory(self) -> Path:
        """Where the journals live: the folder of the path, before any placeholder."""
        return self.path_for("x").parent


def _safe(name: str) -> str:
    # a worker name is free text (--hostname): keep it to one path component
    return "".join(c if c.isalnum() or c in "@._-" else "_" for c in name)
