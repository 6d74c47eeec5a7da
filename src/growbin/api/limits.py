"""The request body's size and time limits, and clients that go away, enforced as it is read.

A declared Content-Length over the cap is answered 413 at once, without reading a byte; a body
without one (chunked) is counted as it arrives and cut off at the cap, so a client cannot make
the server buffer or spool more than the cap either way.

A body must arrive whole within ``read_timeout`` seconds of the first read: a client trickling
a byte every few seconds would otherwise hold a connection and a request's memory for as long
as it likes. It is answered 408. A client that disconnects before its body is complete is one
log line (method, path, bytes received), not a traceback.

The refusals are raised from inside ``receive`` as :class:`HTTPException` subclasses: FastAPI
turns any other exception raised while it reads a JSON body into a 400, but re-raises an
HTTPException, so the API's handler renders them like every other error. When nothing in the
app handles them, this middleware answers itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class BodyTooLargeError(HTTPException):
    def __init__(self, size: int, max_bytes: int, *, declared: bool) -> None:
        over = size - max_bytes
        if declared:
            detail = (
                f"the request body is {size:,} bytes, {over:,} bytes over the limit of "
                f"{max_bytes:,} bytes: send a smaller photo"
            )
        else:
            detail = (
                f"the request body passed the limit of {max_bytes:,} bytes (at least {over:,} "
                "bytes over when it was cut off): send a smaller photo"
            )
        # the rest of the body is not read: the connection cannot be reused
        super().__init__(413, detail, headers={"Connection": "close"})


class BodyTimeoutError(HTTPException):
    def __init__(self, seconds: float, received: int) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {seconds:g} s ({received:,} bytes came): "
            "send it again over a faster connection",
            headers={"Connection": "close"},
        )


class ClientGoneError(Exception):
    """The client disconnected before its body was complete (already logged)."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, BodyTooLargeError(declared, self.max_bytes, declared=True))
            return
        received = 0
        body_done = False
        started = False
        deadline: float | None = None

        async def guarded_receive() -> Message:
            nonlocal received, body_done, deadline
            if body_done:  # later reads only wait for a disconnect: no deadline on those
                return await receive()
            if self.read_timeout is None:
                message = await receive()
            else:
                if deadline is None:
                    deadline = time.monotonic() + self.read_timeout
                try:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        message = await receive()
                except TimeoutError:
                    body_done = True
                    raise BodyTimeoutError(self.read_timeout, received) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    body_done = True
                    raise BodyTooLargeError(received, self.max_bytes, declared=False)
                body_done = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                body_done = True
                log.info(
                    "client disconnected before sending the whole body: %s %s after %d bytes",
                    scope.get("method"),
                    scope.get("path"),
                    received,
                )
                raise ClientGoneError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except (BodyTooLargeError, BodyTimeoutError) as exc:
            if started:
                raise
            await _refuse(send, exc)
        except (ClientGoneError, ClientDisconnect):
            # nobody is listening: there is nothing to answer, and nothing to trace
            return


async def _refuse(send: Send, exc: HTTPException) -> None:
    code = "too_large" if exc.status_code == 413 else "body_timeout"
    body = json.dumps({"error": code, "detail": exc.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
