"""Where a worker serves its metrics: ``GROWBIN_METRICS_PORT``, ``_ADDR`` and ``_DIR``.

Kept apart from the metrics machinery (no Celery, no prometheus_client here) so that
:class:`growbin.settings.Settings` can carry it as ``settings.metrics``, like the journal's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 9090
# every interface: Prometheus scrapes pods and hosts from outside
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


class MetricsConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GROWBIN_METRICS_", extra="ignore")

    port: int = Field(
        default=DEFAULT_PORT, ge=0, le=65535, description="a worker's /metrics port; 0 turns it off"
    )
    addr: str = Field(default=ALL_INTERFACES, description="the address the port listens on")
    dir: str | None = Field(
        default=None,
        description="base directory for the pool processes' metric files "
        "(default: the system temp directory); each worker empties its own subdirectory",
    )

    @classmethod
    def resolve(cls, settings: object) -> MetricsConfig:
        """``settings.metrics`` once the settings carry it; until then, the environment."""
        carried = getattr(settings, "metrics", None)
        return carried if isinstance(carried, MetricsConfig) else cls()

    def directory(self, profile: str, pid: int) -> Path:
        base = Path(self.dir) if self.dir else Path(tempfile.gettempdir()) / "growbin-metrics"
        return base / f"{profile}-{pid}"
