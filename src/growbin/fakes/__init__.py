"""Local fake servers that speak the external providers' protocols, for tests and benchmarks.

They bind 127.0.0.1 only, so the real client code runs over real HTTP without a network or a
key. Faults (latency, 429s, 5xx, timeouts, malformed output) switch on and off at run time,
and every call is recorded so tests can count provider calls.

Imported lazily: ``python -m growbin.fakes.openai_server`` would otherwise import its own
module twice (once through this package) and warn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from growbin.fakes.base import FakeServer, RecordedCall
    from growbin.fakes.kakao_server import FakeKakao
    from growbin.fakes.openai_server import FakeOpenAI

_HOMES = {
    "FakeServer": "growbin.fakes.base",
    "RecordedCall": "growbin.fakes.base",
    "FakeKakao": "growbin.fakes.kakao_server",
    "FakeOpenAI": "growbin.fakes.openai_server",
}
__all__ = ["FakeKakao", "FakeOpenAI", "FakeServer", "RecordedCall"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
