"""The API's settings: :class:`ApiConfig`, carried by the settings object as ``settings.api``.

The class lives in :mod:`growbin.api_config` so that :mod:`growbin.settings` can read it
without importing the HTTP API; the API's code imports it from here.
"""

from __future__ import annotations

from growbin.api_config import MULTIPART_OVERHEAD, ApiConfig

__all__ = ["MULTIPART_OVERHEAD", "ApiConfig"]
