"""Server-sent events for one scan: the steps' states as they change, then the final status.

The scan's row is the source of truth (each step writes its progress there), so the stream
polls it; a poll is one primary-key read. Events:

- ``snapshot``: the whole scan, first;
- ``step``: one step whose state changed (``{"step": ..., "state": ..., ...details}``);
- ``status``: the scan's status changed;
- ``end``: the whole scan once it is done, failed or refused; the stream then closes.

A comment line every ``heartbeat`` seconds keeps proxies from closing a quiet stream; after
``max_seconds`` a ``timeout`` event ends it (the client reconnects or reads the scan).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

FINAL = frozenset({"done", "failed", "refused"})
RECONNECT_MS = 2000

Loader = Callable[[], Awaitable[dict[str, Any] | None]]


def encode(event: str, data: Any, event_id: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    lines += [f"data: {line}" for line in payload.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[tuple[str, Any]]:
    """The events that take a client from ``before`` to ``after``."""
    if before is None:
        return [("snapshot", after)]
    found: list[tuple[str, Any]] = []
    for step, state in after["steps"].items():
        if before["steps"].get(step) != state:
            found.append(("step", {"scan_id": after["id"], "step": step, **state}))
    if before["status"] != after["status"]:
        found.append(
            ("status", {"scan_id": after["id"], "status": after["status"], "error": after["error"]})
        )
    return found


async def scan_events(
    load: Loader,
    *,
    poll: float,
    heartbeat: float,
    max_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[str]:
    yield f"retry: {RECONNECT_MS}\n\n"
    started = last_beat = clock()
    seen: dict[str, Any] | None = None
    event_id = 0
    while True:
        current = await load()
        if current is None:  # deleted while watched
            yield encode("end", {"status": "gone"})
            return
        for name, data in changes(seen, current):
            event_id += 1
            yield encode(name, data, event_id)
            last_beat = clock()
        seen = current
        if current["status"] in FINAL:
            yield encode("end", current, event_id + 1)
            return
        now = clock()
        if now - started >= max_seconds:
            yield encode("timeout", {"scan_id": current["id"], "status": current["status"]})
            return
        if now - last_beat >= heartbeat:
            yield ": keep-alive\n\n"
            last_beat = now
        await asyncio.sleep(poll)
