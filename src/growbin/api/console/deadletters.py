"""Dead letters: the filtered list, one letter's detail, and replay or purge after a
confirmation that says how many, then the outcome.

Every operation is :class:`DeadLetterService`'s, as in the admin API and `growbin dlq`: the
list syncs the queue into the archive first, replay waits for RabbitMQ's confirm before it
acks, purge archives before it acks. The confirmation carries the exact ids it counted, so a
dead letter that arrives between the confirmation and the click is not swept up with them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from growbin.api.console import letters
from growbin.api.console.access import (
    ConsoleRefusalError,
    Runtime,
    Session,
    csrf_checked,
    shown_as_page,
)
from growbin.api.console.templating import render
from growbin.api.runtime import ApiRuntime
from growbin.db.models import DeadLetterRecord, DeadLetterState
from growbin.ops.deadletters.errors import DeadLetterError
from growbin.ops.deadletters.filters import KNOWN_REASONS, DeadLetterFilter
from growbin.ops.deadletters.selection import OPEN_STATES, REPLAYABLE_STATES, not_runnable
from growbin.ops.deadletters.service import DeadLetterService, refusal
from growbin.ops.deadletters.view import exception_line

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(csrf_checked)])

LIST_LIMIT = 200
MAX_SELECTION = 5000
MAX_TASKS_POLLED = 200
STATE_CHOICES = ("open", *(s.value for s in DeadLetterState), "all")
FINAL_TASK_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
TASKS_EVERY_MS = 1000
FILTER_FIELDS = ("reason", "task", "queue", "exception", "state", "older_than", "newer_than")


@dataclass(frozen=True)
class Filters:
    reason: str = ""
    task: str = ""
    queue: str = ""
    exception: str = ""
    state: str = "open"
    older_than: str = ""
    newer_than: str = ""

    @classmethod
    def of(cls, values: dict[str, str | None]) -> Filters:
        clean = {k: (values.get(k) or "").strip()[:255] for k in FILTER_FIELDS}
        clean["state"] = clean["state"] or "open"
        return cls(**clean)

    def build(self) -> DeadLetterFilter:
        states = None if self.state == "open" else [self.state]
        return DeadLetterFilter.from_options(
            task=self.task,
            queue=self.queue,
            reason=self.reason,
            exception=self.exception,
            states=states,
            older_than=self.older_than,
            newer_than=self.newer_than,
        )

    def items(self) -> list[tuple[str, str]]:
        return [(k, getattr(self, k)) for k in FILTER_FIELDS if getattr(self, k)]


def service(runtime: ApiRuntime) -> DeadLetterService:
    # the API's engine is shared: the service must not dispose of it
    return DeadLetterService(runtime.settings, runtime.topology, engine=runtime.scans.engine)


def _common(runtime: ApiRuntime) -> dict[str, Any]:
    return {
        "reasons": KNOWN_REASONS,
        "state_choices": STATE_CHOICES,
        "exception_line": exception_line,
        "now": datetime.now(UTC),
    }


@router.get("/dead-letters")
def list_page(
    request: Request,
    session: Session,
    runtime: Runtime,
    reason: str | None = None,
    task: str | None = None,
    queue: str | None = None,
    exception: str | None = None,
    state: str | None = None,
    older_than: str | None = None,
    newer_than: str | None = None,
) -> Response:
    filters = Filters.of(
        {
            "reason": reason,
            "task": task,
            "queue": queue,
            "exception": exception,
            "state": state,
            "older_than": older_than,
            "newer_than": newer_than,
        }
    )
    error, records = None, []
    try:
        flt = filters.build()
    except DeadLetterError as exc:
        error, flt = str(exc), None
    if flt is not None:
        with shown_as_page(), service(runtime) as tools:
            records = tools.list(flt, limit=LIST_LIMIT + 1)
    return render(
        request,
        "dead_letters.html",
        session=session,
        filters=filters,
        error=error,
        records=records[:LIST_LIMIT],
        more=len(records) > LIST_LIMIT,
        limit=LIST_LIMIT,
        status_code=422 if error else 200,
        **_common(runtime),
    )


def _record(tools: DeadLetterService, dead_letter_id: str) -> DeadLetterRecord:
    if not (
        6 <= len(dead_letter_id) <= 128
        and dead_letter_id.replace("-", "").replace("_", "").isalnum()
    ):
        raise ConsoleRefusalError(
            404, "Not found", f"{dead_letter_id[:40]!r} is not a dead-letter id"
        )
    return tools.show(dead_letter_id)


@router.get("/dead-letters/{dead_letter_id}")
def detail_page(
    request: Request, session: Session, runtime: Runtime, dead_letter_id: str
) -> Response:
    with shown_as_page(), service(runtime) as tools:
        record = _record(tools, dead_letter_id)
    scan_id = letters.scan_of(record)
    return render(
        request,
        "dead_letter.html",
        session=session,
        record=record,
        args=letters.arguments(record),
        death=letters.death_header(record),
        headers_shown=letters.other_headers(record),
        traceback=letters.bounded_traceback(record.traceback or ""),
        scan_id=scan_id,
        pretty=letters.pretty,
        replayable=_why_not(record, "replay") is None,
        purgeable=_why_not(record, "purge") is None,
        **_common(runtime),
    )


def _why_not(record: DeadLetterRecord, action: str) -> str | None:
    state = DeadLetterState(record.state)
    if action == "purge":
        return None if state in OPEN_STATES else f"its state is {record.state}: nothing to purge"
    if state not in REPLAYABLE_STATES:
        return refusal(record)
    return not_runnable(record)


Ids = Annotated[list[str], Form()]


@router.post("/dead-letters/confirm")
def confirm_page(
    request: Request,
    session: Session,
    runtime: Runtime,
    action: Annotated[str, Form()],
    ids: Ids = [],  # noqa: B006 - FastAPI copies defaults
    selection: Annotated[str, Form()] = "ids",
    reason: Annotated[str, Form()] = "",
    task: Annotated[str, Form()] = "",
    queue: Annotated[str, Form()] = "",
    exception: Annotated[str, Form()] = "",
    state: Annotated[str, Form()] = "",
    older_than: Annotated[str, Form()] = "",
    newer_than: Annotated[str, Form()] = "",
) -> Response:
    """Count what ``action`` would touch and ask once more, naming the number."""
    if action not in ("replay", "purge"):
        raise ConsoleRefusalError(
            422, "Cannot do that", f"unknown action {action!r}: replay or purge"
        )
    filters = Filters.of(
        {
            "reason": reason,
            "task": task,
            "queue": queue,
            "exception": exception,
            "state": state,
            "older_than": older_than,
            "newer_than": newer_than,
        }
    )
    with shown_as_page(), service(runtime) as tools:
        if selection == "matching":
            chosen = tools.list(filters.build())
        else:
            if not ids:
                raise ConsoleRefusalError(
                    422,
                    "Nothing chosen",
                    "tick the dead letters to act on, or use the buttons for every matching one",
                )
            chosen = [_record(tools, i) for i in dict.fromkeys(ids[:MAX_SELECTION])]
    acting = [r for r in chosen if _why_not(r, action) is None]
    skipped = [(r, _why_not(r, action)) for r in chosen if _why_not(r, action) is not None]
    return render(
        request,
        "confirm.html",
        session=session,
        action=action,
        acting=acting,
        skipped=skipped,
        filters=filters,
        selection=selection,
        **_common(runtime),
    )


def _confirmed(ids: list[str], what: str) -> list[str]:
    """The confirmed ids, in order, without repeats and within the selection cap."""
    if not ids:
        raise ConsoleRefusalError(
            422, "Nothing chosen", f"no dead letters were confirmed for {what}"
        )
    return list(dict.fromkeys(ids[:MAX_SELECTION]))


@router.post("/dead-letters/replay")
def replay(request: Request, session: Session, runtime: Runtime, ids: Ids = []) -> Response:  # noqa: B006
    chosen = _confirmed(ids, "replay")
    since = time.time()
    with shown_as_page(), service(runtime) as tools:
        report = tools.replay(chosen)
    return render(
        request,
        "outcome.html",
        session=session,
        action="replay",
        replayed=report.replayed,
        skipped=report.skipped,
        purged=0,
        since=since,
        states=task_states(runtime, [r.task_id for r in report.replayed], since),
        every=TASKS_EVERY_MS,
    )


@router.post("/dead-letters/purge")
def purge(request: Request, session: Session, runtime: Runtime, ids: Ids = []) -> Response:  # noqa: B006
    chosen = _confirmed(ids, "purging")
    with shown_as_page(), service(runtime) as tools:
        count = tools.purge(ids=chosen, confirm=True)
    return render(
        request,
        "outcome.html",
        session=session,
        action="purge",
        replayed=[],
        skipped=[],
        purged=count,
        since=time.time(),
        states={},
        every=TASKS_EVERY_MS,
    )


@dataclass(frozen=True)
class TaskState:
    task_id: str
    state: str  # Celery's, or "waiting" while only the failed run's state is known
    detail: str

    @property
    def final(self) -> bool:
        return self.state in FINAL_TASK_STATES


def _done_at(meta: dict[str, Any]) -> float | None:
    value = meta.get("date_done")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return None


def task_state(runtime: ApiRuntime, task_id: str, since: float) -> TaskState:
    """The replayed task's state; its failed run's state until a worker reports again."""
    try:
        meta = runtime.celery.backend.get_task_meta(task_id, cache=False)
    except Exception as exc:  # the result store is down: say so, do not fail the page
        return TaskState(task_id, "unknown", f"result store unavailable ({type(exc).__name__})")
    state = str(meta.get("status") or "PENDING")
    done = _done_at(meta)
    if state in FINAL_TASK_STATES and done is not None and done < since:
        return TaskState(task_id, "waiting", f"queued again; its last run ended {state}")
    if state == "FAILURE":
        return TaskState(task_id, state, str(meta.get("result") or "")[:300])
    return TaskState(task_id, state, "")


def task_states(runtime: ApiRuntime, task_ids: list[str], since: float) -> dict[str, TaskState]:
    return {t: task_state(runtime, t, since) for t in task_ids[:MAX_TASKS_POLLED]}


@router.get("/tasks/fragment")
def tasks_fragment(
    request: Request,
    session: Session,
    runtime: Runtime,
    id: Annotated[list[str], Query()] = [],  # noqa: B006
    since: float = 0.0,
) -> Response:
    ids = [i for i in id if 0 < len(i) <= 64][:MAX_TASKS_POLLED]
    states = task_states(runtime, ids, since)
    final = all(s.final for s in states.values())
    return render(
        request,
        "_tasks.html",
        session=session,
        states=states,
        headers={"X-Console-Poll": "stop"} if final else None,
    )
