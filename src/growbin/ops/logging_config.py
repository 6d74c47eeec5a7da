"""How Growbin logs: ``GROWBIN_LOG_FORMAT`` (text or json) and ``GROWBIN_LOG_LEVEL``.

Light on imports so :class:`growbin.settings.Settings` can carry it as ``settings.log``.
"""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class LoggingConfig(BaseSettings):
    """``GROWBIN_LOG_FORMAT`` (text or json) and ``GROWBIN_LOG_LEVEL``; meant to ride on the
    settings as ``settings.log``, like the journal's config."""

    model_config = SettingsConfigDict(env_prefix="GROWBIN_LOG_", extra="ignore")

    format: Literal["text", "json"] = "text"
    level: str = "INFO"

    @property
    def is_json(self) -> bool:
        return self.format == "json"
