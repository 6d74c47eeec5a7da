"""Who may use the console: a valid session of a live admin key, and a CSRF token on writes.

A page asked for without a session redirects to the sign-in form (and back afterwards); a
fragment (what the pages poll) or a write answers 401, so a script never follows a redirect
into a form. Every refusal is an HTML page, as the console is read by people.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import quote

import redis
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from growbin.api.console import session as cookies
from growbin.api.console.session import ConsoleSession
from growbin.api.deps import get_runtime
from growbin.api.keys_records import ApiKey
from growbin.api.runtime import ApiRuntime
from growbin.errors import GrowbinError, ServiceUnavailableError
from growbin.ops.deadletters.errors import DeadLetterBusyError, DeadLetterNotFoundError

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ConsoleRefusalError(GrowbinError):
    """Shown as an HTML page with ``status``; ``sign_in`` sends a page request to sign in."""

    def __init__(self, status: int, title: str, detail: str, *, sign_in: bool = False) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.sign_in = sign_in
        super().__init__(f"{status} {title}: {detail}")


def is_page_request(request: Request) -> bool:
    """A browser navigation (not a fragment poll, not a form post)."""
    return (
        request.method == "GET"
        and request.headers.get("X-Console-Fragment") is None
        and not request.url.path.endswith("/fragment")
    )


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/sign-in?next={quote(target, safe='')}", status_code=303)


def runtime_of(request: Request) -> ApiRuntime:
    try:
        return get_runtime(request)
    except Exception:
        raise ConsoleRefusalError(
            503, "Starting", "the API is still starting; reload in a moment"
        ) from None


def current_session(request: Request) -> ConsoleSession:
    """The signed-in admin, checked against the key table on every request."""
    runtime = runtime_of(request)
    found = cookies.decode(request.cookies.get(cookies.COOKIE), cookies.session_key(runtime.secret))
    if found is None:
        raise ConsoleRefusalError(
            401, "Sign in", "sign in with an admin API key to use the console", sign_in=True
        )
    with shown_as_page(), runtime.scans.session() as db:
        key = db.scalars(select(ApiKey).where(ApiKey.id == found.key_id)).first()
        live = key is not None and key.revoked_at is None and key.prefix == found.prefix
        admin = live and key is not None and "admin" in (key.scopes or ())
    if not admin:
        raise ConsoleRefusalError(
            401,
            "Sign in again",
            f"the key {found.prefix} was revoked or lost its admin scope; sign in with a live "
            "admin key",
            sign_in=True,
        )
    return found


async def csrf_checked(request: Request) -> None:
    """Refuse a state-changing request without this session's CSRF token (form or header)."""
    if request.method not in UNSAFE_METHODS:
        return
    token = request.headers.get(cookies.CSRF_HEADER)
    if token is None:
        form = await request.form()
        value = form.get(cookies.CSRF_FIELD)
        token = value if isinstance(value, str) else None
    runtime = runtime_of(request)
    found = cookies.decode(request.cookies.get(cookies.COOKIE), cookies.session_key(runtime.secret))
    if found is None:
        raise ConsoleRefusalError(
            401, "Sign in", "sign in with an admin API key first", sign_in=True
        )
    if not found.csrf_matches(token):
        raise ConsoleRefusalError(
            403,
            "Refused: no valid CSRF token",
            "this request did not carry the page's security token, so it may not come from "
            "the console; go back, reload the page and submit again",
        )


Session = Annotated[ConsoleSession, Depends(current_session)]
Runtime = Annotated[ApiRuntime, Depends(runtime_of)]


@contextmanager
def shown_as_page() -> Iterator[None]:
    """Errors of the services and tools become an HTML page naming the cause and the fix."""
    try:
        yield
    except ConsoleRefusalError:
        raise
    except DeadLetterNotFoundError as exc:
        raise ConsoleRefusalError(404, "Not found", str(exc)) from exc
    except DeadLetterBusyError as exc:
        raise ConsoleRefusalError(409, "Busy", str(exc)) from exc
    except ServiceUnavailableError as exc:
        raise ConsoleRefusalError(503, "A service is unavailable", str(exc)) from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ConsoleRefusalError(
            503, "Redis is unavailable", f"{type(exc).__name__}: {exc}"
        ) from exc
    except GrowbinError as exc:
        raise ConsoleRefusalError(422, "Cannot do that", str(exc)) from exc


def security_headers(response_headers: dict[str, str] | None = None) -> dict[str, str]:
    """No framing, no inline script, nothing from another origin, nothing cached."""
    headers = {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
    headers.update(response_headers or {})
    return headers
