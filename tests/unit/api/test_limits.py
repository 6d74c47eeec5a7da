"""The body limits: refused before reading when declared, cut off while streaming when not,
408 when the body does not arrive in time, and one log line when the client goes away."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from growbin.api import problems
from growbin.api.limits import BodySizeLimit


class Payload(BaseModel):
    text: str


def make_app(read: list[int], *, read_timeout: float | None = None) -> FastAPI:
    app = FastAPI()

    @app.post("/")
    async def upload(request: Request) -> JSONResponse:
        body = await request.body()
        read.append(len(body))
        return JSONResponse({"size": len(body)})

    @app.post("/json")
    async def json_body(payload: Payload) -> JSONResponse:
        # FastAPI reads this body itself, and turns most errors while reading it into a 400
        read.append(len(payload.text))
        return JSONResponse({"size": len(payload.text)})

    # as create_api adds it: a user middleware, inside Starlette's error middleware
    app.add_middleware(BodySizeLimit, max_bytes=100, read_timeout=read_timeout)
    problems.install(app, retry_after=5)
    return app


def call(app, chunks: list[bytes], length: int | None, *, path: str = "/", gap: float = 0.0):
    """Send ``chunks``, ``gap`` seconds apart. ``None`` as a chunk: the client leaves; ``...``
    as the last: it sends nothing more, and does not leave."""
    sent: list[dict] = []
    received = 0
    messages: list[dict] = []
    for i, c in enumerate(chunks):
        if c is None:
            messages.append({"type": "http.disconnect"})
        elif c is not ...:
            last = i == len(chunks) - 1
            messages.append({"type": "http.request", "body": c, "more_body": not last})

    async def receive():
        nonlocal received
        received += 1
        if not messages:
            await asyncio.sleep(3600)  # a client that never sends the rest
        if gap and received > 1:
            await asyncio.sleep(gap)
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    headers = [(b"content-length", str(length).encode())] if length is not None else []
    headers.append((b"content-type", b"application/json"))
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": headers,
        "query_string": b"",
    }
    asyncio.run(app(scope, receive, send))
    if not sent:
        return None, b"", received
    return sent[0]["status"], sent[1]["body"], received


def test_a_declared_length_over_the_cap_is_answered_413_without_reading_the_body():
    read: list[int] = []
    status, body, received = call(make_app(read), [b"x" * 500], 500)
    assert status == 413
    assert b"too_large" in body
    assert received == 0
    assert read == []


def test_an_undeclared_body_is_cut_off_once_it_passes_the_cap():
    read: list[int] = []
    status, body, received = call(make_app(read), [b"x" * 60] * 10, None)
    assert status == 413
    assert b"too_large" in body and b"over" in body
    assert received == 2  # stopped at the chunk that crossed 100 bytes
    assert read == []


def test_an_undeclared_json_body_over_the_cap_is_413_not_a_parse_error():
    read: list[int] = []
    status, body, _ = call(
        make_app(read), [b'{"text": "' + b"x" * 60, b"x" * 60], None, path="/json"
    )
    assert status == 413, body
    assert read == []


def test_a_body_within_the_cap_reaches_the_app():
    read: list[int] = []
    status, _, _ = call(make_app(read), [b"x" * 40, b"y" * 40], None)
    assert (status, read) == (200, [80])


def test_a_body_trickling_in_past_the_read_timeout_is_answered_408():
    read: list[int] = []
    chunks = [b"x"] * 50
    status, body, received = call(make_app(read, read_timeout=0.3), chunks, 50, gap=0.1)
    assert status == 408, body
    assert b"body_timeout" in body and b"0.3 s" in body
    assert received < 10  # cut off after about 0.3 s, not after the 5 s the client wanted
    assert read == []


def test_a_body_that_never_comes_is_answered_408_also_for_a_json_route():
    read: list[int] = []
    status, body, _ = call(make_app(read, read_timeout=0.2), [b'{"text":', ...], 40, path="/json")
    assert status == 408, body
    assert read == []


def test_a_body_in_time_is_not_cut_by_the_timeout():
    read: list[int] = []
    status, _, _ = call(make_app(read, read_timeout=5), [b"x" * 10] * 5, 50, gap=0.01)
    assert (status, read) == (200, [50])


def test_a_client_that_disconnects_mid_body_is_one_log_line_and_no_traceback(caplog):
    read: list[int] = []
    with caplog.at_level(logging.DEBUG):
        status, _, _ = call(make_app(read, read_timeout=5), [b"x" * 10, None], 50)
    assert status is None  # nobody to answer
    assert read == []
    lines = [r for r in caplog.records if "disconnect" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert "POST / after 10 bytes" in lines[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)
