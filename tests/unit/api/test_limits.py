"""The body cap: refused before reading when declared, cut off while streaming when not."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from growbin.api.limits import BodySizeLimit


def make_app(read: list[int]):
    async def upload(request: Request) -> JSONResponse:
        body = await request.body()
        read.append(len(body))
        return JSONResponse({"size": len(body)})

    # as create_api adds it: a user middleware, inside Starlette's error middleware
    return Starlette(
        routes=[Route("/", upload, methods=["POST"])],
        middleware=[Middleware(BodySizeLimit, max_bytes=100)],
    )


def call(app, chunks: list[bytes], length: int | None):
    sent: list[dict] = []
    received = 0
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive():
        nonlocal received
        received += 1
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    headers = [(b"content-length", str(length).encode())] if length is not None else []
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    asyncio.run(app(scope, receive, send))
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
    status, _, received = call(make_app(read), [b"x" * 60] * 10, None)
    assert status == 413
    assert received == 2  # stopped at the chunk that crossed 100 bytes
    assert read == []


def test_a_body_within_the_cap_reaches_the_app():
    read: list[int] = []
    status, _, _ = call(make_app(read), [b"x" * 40, b"y" * 40], None)
    assert (status, read) == (200, [80])
