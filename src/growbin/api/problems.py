"""Every error leaves the API as ``{"error": code, "detail": message}`` with the right status.

Domain exceptions are mapped here, once, so routes stay thin and a new route cannot leak a
traceback or answer a broker refusal with anything but 503.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from growbin.api.fetch import FetchError
from growbin.api.keys import ApiKeyError
from growbin.api.publishing import PublishRefusedError, explain
from growbin.api.result_store import StoreRestart
from growbin.errors import ServiceUnavailableError
from growbin.ops.deadletters.errors import (
    DeadLetterBusyError,
    DeadLetterError,
    DeadLetterNotFoundError,
    ReplayError,
)
from growbin.scan.images import ImageRejected, RejectCode
from growbin.scan.intake import ScanRefusedError

IMAGE_STATUS = {
    RejectCode.TOO_LARGE: 413,
    RejectCode.UNSUPPORTED_FORMAT: 415,
    RejectCode.NOT_AN_IMAGE: 415,
}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "body_timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}
WWW_AUTHENTICATE = 'Bearer realm="growbin"'


class ApiError(Exception):
    """Raised by routes and dependencies: rendered as the error body with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: Any,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
        super().__init__(f"{status} {code}: {detail}")


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": WWW_AUTHENTICATE})


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what} with that id for this key")


def lost_by_store(what: str, restart: StoreRestart) -> ApiError:
    """404 for an id Redis may have lost when it restarted: say so, and how to prevent it."""
    since = datetime.fromtimestamp(restart.started_at, UTC).isoformat(timespec="seconds")
    return ApiError(
        404,
        "not_found",
        f"no {what} with that id for this key. Redis, where issued ids and results are kept, "
        f"restarted {restart.seconds_ago:.0f} s ago ({since}) and does not persist its data "
        f"(no AOF): a {what} accepted before then may have finished, but its id and result are "
        "lost. Fix: run Redis with `appendonly yes` (see the README's Redis section); "
        "submit it again if it is still needed",
        reason="result_store_reset",
    )


def body(
    status: int, code: str, detail: Any, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status, headers=headers)


def install(app: FastAPI, retry_after: int) -> None:
    later = {"Retry-After": str(retry_after)}

    async def problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return body(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)

    async def image(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ImageRejected)
        return body(IMAGE_STATUS.get(exc.code, 422), exc.code.value, str(exc))

    async def fetch(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FetchError)
        return body(413 if exc.code == "too_large" else 422, exc.code, str(exc))

    async def scan_refused(_: Request, exc: Exception) -> JSONResponse:
        # routes explain refusals where they happen; this is the fallback for any other path
        assert isinstance(exc, ScanRefusedError)
        refused = explain(exc.__cause__ or exc, scan_id=exc.scan_id)
        return await publish_refused(_, refused)

    async def publish_refused(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PublishRefusedError)
        extra: dict[str, Any] = {"reason": exc.reason}
        if exc.queue is not None:
            extra["queue"] = exc.queue
        if exc.scan_id is not None:
            extra["scan_id"] = exc.scan_id
        return body(503, exc.code, str(exc), later, **extra)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        # ServiceUnavailableError messages carry URLs with the password already masked
        return body(503, "service_unavailable", str(exc), later)

    async def redis_down(_: Request, exc: Exception) -> JSONResponse:
        return body(
            503, "service_unavailable", f"Redis is not reachable: {type(exc).__name__}", later
        )

    async def dead_letters(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DeadLetterNotFoundError):
            return body(404, "not_found", str(exc))
        if isinstance(exc, DeadLetterBusyError):
            return body(409, "busy", str(exc), later)
        if isinstance(exc, ReplayError):
            return body(503, "broker_refused", str(exc), later, reason="broker_nack")
        return body(422, "invalid_request", str(exc))

    async def key_error(_: Request, exc: Exception) -> JSONResponse:
        return body(422, "invalid_request", str(exc))

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = HTTP_CODES.get(exc.status_code, "error")
        return body(exc.status_code, code, exc.detail, dict(exc.headers or {}))

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # only location, message and type: the rejected input may be bytes that are not text
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg")),
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        return body(422, "invalid_request", errors)

    handlers = {
        ApiError: problem,
        ImageRejected: image,
        FetchError: fetch,
        ScanRefusedError: scan_refused,
        PublishRefusedError: publish_refused,
        ServiceUnavailableError: unavailable,
        redis.ConnectionError: redis_down,
        redis.TimeoutError: redis_down,
        DeadLetterError: dead_letters,
        ApiKeyError: key_error,
        StarletteHTTPException: http_error,
        RequestValidationError: invalid,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
