"""The operations console: queues, workers, guards and dead letters on web pages at /console.

Served by `growbin api` for admin keys only (sign in once; a signed, expiring session cookie;
a CSRF token on every write). Server-rendered Jinja2 pages with a small script that refreshes
parts of them; everything it needs ships in the package (no CDN, no external font), so it works
on an air-gapped network, and without the script too (every action is a plain form).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from growbin.api.console import deadletters, pages, signin
from growbin.api.console.access import ConsoleRefusalError
from growbin.api.console.templating import STATIC


def install_console(app: FastAPI) -> None:
    """Add the console's routes, its static files and its refusal pages to ``app``."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleRefusalError)
        return signin.refusal_page(request, exc)

    app.add_exception_handler(ConsoleRefusalError, refused)
    app.mount("/console/static", StaticFiles(directory=str(STATIC)), name="console-static")
    for router in (signin.router, pages.router, deadletters.router):
        app.include_router(router)


__all__ = ["install_console"]
