"""Signing in with an admin key, and out again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from growbin.api import keys
from growbin.api.console import session as cookies
from growbin.api.console.access import (
    ConsoleRefusalError,
    Runtime,
    csrf_checked,
    security_headers,
    shown_as_page,
)
from growbin.api.console.session import ConsoleSession
from growbin.api.console.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)


def _next(target: str | None) -> str:
    """Where to go after signing in: only a console path of this site (no open redirect)."""
    unsafe = any(ch in (target or "") for ch in "\\\r\n")
    if target and target.startswith("/console") and not unsafe:
        return target
    return "/console"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"


def _form(request: Request, *, next_path: str, error: str | None, status_code: int) -> Response:
    token = cookies.new_sign_in_token()
    response = render(
        request,
        "sign_in.html",
        token=token,
        next_path=next_path,
        error=error,
        status_code=status_code,
    )
    response.set_cookie(
        cookies.SIGN_IN_COOKIE,
        token,
        max_age=1800,
        path=cookies.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    return _form(request, next_path=_next(next), error=None, status_code=200)


@router.post("/sign-in")
def sign_in(
    request: Request,
    runtime: Runtime,
    key: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/console",
) -> Response:
    target = _next(next)
    if not cookies.sign_in_token_matches(request.cookies.get(cookies.SIGN_IN_COOKIE), token):
        return _form(
            request,
            next_path=target,
            error="The sign-in form expired or did not come from this page: try again.",
            status_code=403,
        )
    key = key.strip()
    if not key:
        return _form(request, next_path=target, error="Enter an admin API key.", status_code=401)
    if not keys.looks_like_key(key):
        return _form(
            request,
            next_path=target,
            error="That is not an API key: keys look like gb_<prefix>_<secret>.",
            status_code=401,
        )
    with shown_as_page(), runtime.scans.session() as db:
        record = keys.authenticate(db, runtime.secret, key)
        if record is None:
            return _form(
                request,
                next_path=target,
                error="The key is unknown or revoked: ask for a new one.",
                status_code=401,
            )
        if "admin" not in (record.scopes or ()):
            return _form(
                request,
                next_path=target,
                error=f"The key {record.prefix} has no admin scope; the console needs one "
                "(growbin apikey create --scope admin).",
                status_code=403,
            )
        session = ConsoleSession.new(record.id, record.owner, record.prefix)
    response = RedirectResponse(target, status_code=303, headers=security_headers())
    response.set_cookie(
        cookies.COOKIE,
        cookies.encode(session, cookies.session_key(runtime.secret)),
        max_age=cookies.SESSION_SECONDS,
        path=cookies.COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(cookies.SIGN_IN_COOKIE, path=cookies.COOKIE_PATH)
    return response


@router.post("/sign-out", dependencies=[Depends(csrf_checked)])
def sign_out(request: Request) -> Response:
    response = RedirectResponse("/console/sign-in", status_code=303, headers=security_headers())
    response.delete_cookie(cookies.COOKIE, path=cookies.COOKIE_PATH)
    return response


def refusal_page(request: Request, exc: ConsoleRefusalError) -> Response:
    """The page for a refusal; a page request without a session goes to the sign-in form."""
    from growbin.api.console.access import is_page_request, sign_in_redirect

    if exc.sign_in and is_page_request(request):
        response: Response = sign_in_redirect(request)
        response.delete_cookie(cookies.COOKIE, path=cookies.COOKIE_PATH)
        return response
    return render(
        request,
        "refused.html",
        status_code=exc.status,
        title=exc.title,
        detail=exc.detail,
        sign_in=exc.sign_in,
    )
