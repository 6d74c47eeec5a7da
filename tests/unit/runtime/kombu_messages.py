"""Kombu messages as a worker's consumer receives them, for the runtime's unit tests."""

from __future__ import annotations

from typing import Any

from kombu.message import Message

TASK_ID = "0b5e3c8e-5f0a-4d8e-9a4b-0c1d2e3f4a5b"
GOOD_BODY = b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'


def celery_headers(task: Any = "growbin.demo.add", **changes: Any) -> dict[str, Any]:
    headers = {"lang": "py", "task": task, "id": TASK_ID, "retries": 0, "root_id": TASK_ID}
    headers.update(changes)
    return {k: v for k, v in headers.items() if v is not None}


def message(
    body: bytes | str = GOOD_BODY,
    headers: dict[str, Any] | None = None,
    content_type: str | None = "application/json",
    content_encoding: str | None = "utf-8",
    **properties: Any,
) -> Message:
    """A kombu message as the worker's consumer gets it (accepting json only)."""
    return Message(
        body=body,
        delivery_tag=1,
        content_type=content_type,
        content_encoding=content_encoding,
        headers=celery_headers() if headers is None else headers,
        properties=properties,
        delivery_info={"exchange": "tasks", "routing_key": "api.demo", "consumer_tag": "ct-1"},
        accept=["application/json"],
    )
