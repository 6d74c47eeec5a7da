"""Reading server-sent events in the API tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from tests.unit.api.local_http import LocalFiles


def read_events(client: httpx.Client, url: str, timeout: float = 120.0) -> list[tuple[str, Any]]:
    """Every (event, data) of a stream until the server closes it; comments as ('comment', text)."""
    events: list[tuple[str, Any]] = []
    with client.stream("GET", url, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for block in _blocks(response.iter_lines()):
            events.append(block)
    return events


def _blocks(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    name, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())


__all__ = ["LocalFiles", "read_events"]
