"""The overview and the scans: pages, and the fragments they poll to stay current."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from growbin.api.console import scans as scan_rows
from growbin.api.console.access import (
    ConsoleRefusalError,
    Runtime,
    Session,
    csrf_checked,
    shown_as_page,
)
from growbin.api.console.overview import OverviewSource, as_context
from growbin.api.console.templating import render
from growbin.api.runtime import ApiRuntime
from growbin.scan.records import STEPS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(csrf_checked)])

OVERVIEW_EVERY_MS = 5000
SCAN_EVERY_MS = 1000
STOP = {"X-Console-Poll": "stop"}  # tells the page's script that nothing will change now


def _source(request: Request, runtime: ApiRuntime) -> OverviewSource:
    source = getattr(request.app.state, "console_overview", None)
    if not isinstance(source, OverviewSource) or source.settings is not runtime.settings:
        source = OverviewSource(runtime.settings, runtime.topology, runtime.scans.engine)
        request.app.state.console_overview = source
    return source


@router.get("")
async def overview_page(request: Request, session: Session, runtime: Runtime) -> Response:
    overview = await run_in_threadpool(_source(request, runtime).get)
    return render(
        request, "overview.html", session=session, every=OVERVIEW_EVERY_MS, **as_context(overview)
    )


@router.get("/overview/fragment")
async def overview_fragment(request: Request, session: Session, runtime: Runtime) -> Response:
    overview = await run_in_threadpool(_source(request, runtime).get)
    return render(request, "_overview.html", session=session, **as_context(overview))


@router.get("/scans")
def scans_page(
    request: Request, session: Session, runtime: Runtime, status: str | None = None
) -> Response:
    chosen = status if status in scan_rows.STATUSES else None
    with shown_as_page(), runtime.scans.session() as db:
        rows = scan_rows.recent(db, status=chosen)
    return render(
        request,
        "scans.html",
        session=session,
        rows=rows,
        status=chosen,
        statuses=scan_rows.STATUSES,
        steps=STEPS,
    )


def _scan(runtime: ApiRuntime, scan_id: str) -> scan_rows.ScanRow:
    if not (0 < len(scan_id) <= 32 and scan_id.isalnum()):
        raise ConsoleRefusalError(404, "Not found", f"{scan_id[:40]!r} is not a scan id")
    with shown_as_page(), runtime.scans.session() as db:
        row = scan_rows.one(db, scan_id)
    if row is None:
        raise ConsoleRefusalError(404, "Not found", f"no scan has the id {scan_id}")
    return row


@router.get("/scans/{scan_id}")
def scan_page(request: Request, session: Session, runtime: Runtime, scan_id: str) -> Response:
    row = _scan(runtime, scan_id)
    return render(request, "scan.html", session=session, scan=row, every=SCAN_EVERY_MS)


@router.get("/scans/{scan_id}/fragment")
def scan_fragment(request: Request, session: Session, runtime: Runtime, scan_id: str) -> Response:
    row = _scan(runtime, scan_id)
    return render(
        request, "_scan.html", session=session, scan=row, headers=None if row.open else STOP
    )
