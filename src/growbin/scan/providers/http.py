"""One way to call a provider over HTTP and sort its failures (shared by every client here).

httpx would raise its own exceptions, which :func:`growbin.runtime.failures.is_transient` also
understands; we translate them anyway so that messages name the provider and the fix, carry the
Retry-After value, and can never include a secret echoed back in an error body.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from growbin.errors import ConfigError
from growbin.scan.providers.errors import (
    ProviderOutputError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    public_url,
)

logger = logging.getLogger("growbin.providers")

MAX_REASON_CHARS = 200
# Bearer tokens and API keys as vendors print them; some echo the key in their 401 body.
_TOKEN_LIKE = re.compile(r"(?i)(bearer\s+|kakaoak\s+)\S+|\bsk-[A-Za-z0-9_\-*]{6,}")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove secrets (exact values, and anything that looks like a key or token) from text."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return _TOKEN_LIKE.sub(lambda m: (m.group(1) or "") + "****", text)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_reason(response: httpx.Response, secrets: Iterable[str]) -> str:
    """The vendor's own error message if its body has one, else the status phrase."""
    reason = response.reason_phrase or "error"
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        # OpenAI: {"error": {"message": ...}}; Kakao: {"message": ...} or {"msg": ...}
        found = error.get("message") if isinstance(error, dict) else None
        found = found or body.get("message") or body.get("msg") or error
        if isinstance(found, str) and found:
            reason = f"{reason}: {found}"
    return redact(reason, secrets)[:MAX_REASON_CHARS]


def check_status(
    response: httpx.Response,
    *,
    provider: str,
    secrets: Iterable[str] = (),
    fixes: dict[int, str] | None = None,
    rejected: type[ProviderRejectedError] = ProviderRejectedError,
    rejected_statuses: Iterable[int] = (),
) -> None:
    """Raise the right provider error for a non-2xx response; return for 2xx.

    ``rejected`` is raised instead of the plain fatal error for ``rejected_statuses``
    (the OAuth verifier uses it to raise InvalidTokenError for 401).
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    method, url = response.request.method, str(response.request.url)
    secrets = tuple(secrets)
    reason = _error_reason(response, secrets)
    if status == 429 or status >= 500:
        kind = ProviderRateLimitedError if status == 429 else ProviderUnavailableError
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise kind(provider, method, url, reason, status=status, retry_after=retry_after)
    fix = (fixes or {}).get(status) or _default_fix(status)
    kind_fatal = rejected if status in set(rejected_statuses) else ProviderRejectedError
    raise kind_fatal(provider, method, url, reason, status=status, fix=fix)


def _default_fix(status: int) -> str:
    if 300 <= status < 400:
        return "the provider redirected the request; point the base URL at the final address"
    if status in (401, 403):
        return "check the API key for this provider and its permissions"
    if status == 404:
        return "check the base URL and the model name"
    return "the provider refused this request as invalid; see the reason above"


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    provider: str,
    secrets: Iterable[str] = (),
    fixes: dict[int, str] | None = None,
    rejected: type[ProviderRejectedError] = ProviderRejectedError,
    rejected_statuses: Iterable[int] = (),
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; return a 2xx response or raise a provider error (never httpx's own)."""
    started = time.perf_counter()
    try:
        response = client.request(method, url, **kwargs)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
        # The request cannot even be built (no http:// in the base URL, a newline pasted into
        # a key): no retry can fix that, and the worker must not spin on it.
        raise ConfigError(
            f"{provider}: cannot send {method} {public_url(url)}: "
            f"{redact(str(exc), secrets)[:MAX_REASON_CHARS]}. Fix: check this provider's base "
            f"URL (http:// or https://) and its API key"
        ) from None
    except httpx.TimeoutException as exc:
        reason = f"no answer within the timeout ({type(exc).__name__})"
        raise ProviderTimeoutError(provider, method, url, reason) from exc
    except httpx.TransportError as exc:
        reason = f"connection failed ({type(exc).__name__}: {redact(str(exc), secrets)})"
        raise ProviderUnavailableError(provider, method, url, reason[:MAX_REASON_CHARS]) from exc
    logger.debug(
        "%s %s %s -> %d in %.3fs",
        provider,
        method,
        public_url(str(response.request.url)),
        response.status_code,
        time.perf_counter() - started,
    )
    check_status(
        response,
        provider=provider,
        secrets=secrets,
        fixes=fixes,
        rejected=rejected,
        rejected_statuses=rejected_statuses,
    )
    return response


def json_body(response: httpx.Response, *, provider: str) -> Any:
    """The decoded JSON body of a 2xx response; a body that is not JSON is a provider fault."""
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderOutputError(
            provider,
            response.request.method,
            str(response.request.url),
            f"the response body is not JSON ({exc})"[:MAX_REASON_CHARS],
        ) from exc
