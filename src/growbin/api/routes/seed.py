"""Seed 003's endpoints: solo, chain and group tasks, and their results.

Results: 200 done, 202 still queued or running, 404 unknown (or another owner's), 500 failed.
Numbers not given are drawn at random (1..100), as in the seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from growbin.api import tasks
from growbin.api.deps import Principal, Runtime, ScansUser
from growbin.api.problems import ApiError, lost_by_store, not_found
from growbin.api.runtime import ApiRuntime
from growbin.api.schemas import (
    ErrorBody,
    GroupResultView,
    GroupSubmitted,
    RefusedBody,
    TaskResult,
    TaskSubmitted,
)

router = APIRouter(tags=["tasks (seed 003)"])

Number = Annotated[
    float | None,
    Query(ge=-1e9, le=1e9, allow_inf_nan=False, description="default: random, 1 to 100"),
]
TaskId = Annotated[str, Path(pattern=r"^[0-9A-Za-z-]{1,64}$")]
SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no, malformed, unknown or revoked API key"},
    429: {
        "model": ErrorBody,
        "description": "over a quota of this key (rate, tasks in flight): nothing was queued; "
        "see Retry-After and the RateLimit headers",
    },
    503: {
        "model": RefusedBody,
        "description": "not accepted (the broker refused it, or Redis is down): nothing was queued",
    },
}
RESULT_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": TaskResult, "description": "queued, started or retrying"},
    401: {"model": ErrorBody, "description": "no, malformed, unknown or revoked API key"},
    404: {
        "model": ErrorBody,
        "description": "no task with that id was issued to this key's owner (`reason: "
        "result_store_reset` when Redis restarted without AOF and may have lost it)",
    },
    500: {"model": TaskResult, "description": "the task failed (`error` says how)"},
}


def _gate(runtime: ApiRuntime, user: Principal, *, delayed: bool = False) -> tasks.Gate:
    """A quota slot per task id (429 when the key has too many in flight)."""

    def admit(ids: Sequence[str]) -> tasks.Releasable:
        return runtime.quotas.hold_tasks(
            user.key_prefix,
            user.quotas,
            [f"task:{i}" for i in ids],
            runtime.finished,
            delayed=delayed,
            retry_after=runtime.config.retry_after,
        )

    return admit


def _unknown(runtime: ApiRuntime, what: str) -> ApiError:
    """404; when Redis restarted without AOF within the ids' lifetime, a 404 that says so."""
    restart = runtime.tasks.restart()
    return not_found(what) if restart is None else lost_by_store(what, restart)


def _pick(value: float | None) -> float:
    number = value if value is not None else float(random.randint(1, 100))
    # whole numbers travel as ints, so 3 + 4 answers 7, not 7.0, as in the seed
    return int(number) if float(number).is_integer() else number


@router.get("/solo/add", status_code=202, response_model=TaskSubmitted, responses=SUBMIT_ERRORS)
def solo_add(
    user: ScansUser,
    runtime: Runtime,
    a: Number = None,
    b: Number = None,
    delay: Annotated[
        float,
        Query(
            ge=0,
            le=tasks.MAX_DELAY,
            description="seconds the task sleeps (a key has few such tasks in flight at once)",
        ),
    ] = 0.0,
) -> TaskSubmitted:
    """One task: a + b (the seed's add sleeps 20 s; choose a delay of up to 5 s here)."""
    x, y = _pick(a), _pick(b)
    sent = tasks.submit_add(
        runtime.celery,
        runtime.tasks,
        user.owner,
        x,
        y,
        delay,
        runtime.refusals,
        gate=_gate(runtime, user, delayed=delay > 0),
    )
    return TaskSubmitted(
        message=f"FastAPI : a={x}, b={y} Published to the queue",
        task_id=sent.task_id,
        result_url=f"/result/{sent.task_id}",
    )


@router.get("/solo/chain", status_code=202, response_model=TaskSubmitted, responses=SUBMIT_ERRORS)
def solo_chain(
    user: ScansUser, runtime: Runtime, a: Number = None, b: Number = None
) -> TaskSubmitted:
    """A chain: add(a, b), then the sum times each of a and b. Its id is the last task's."""
    x, y = _pick(a), _pick(b)
    sent = tasks.submit_chain(
        runtime.celery, runtime.tasks, user.owner, x, y, runtime.refusals, gate=_gate(runtime, user)
    )
    return TaskSubmitted(
        message=f"Chain task submitted : a = {x}, b = {y}",
        task_id=sent.task_id,
        result_url=f"/result/{sent.task_id}",
    )


@router.get("/solo/group", status_code=202, response_model=GroupSubmitted, responses=SUBMIT_ERRORS)
def solo_group(
    user: ScansUser, runtime: Runtime, a: Number = None, b: Number = None
) -> GroupSubmitted:
    """A group: add(a, b) and multiply(a, b) in parallel, saved so its result can be read."""
    x, y = _pick(a), _pick(b)
    sent = tasks.submit_group(
        runtime.celery, runtime.tasks, user.owner, x, y, runtime.refusals, gate=_gate(runtime, user)
    )
    return GroupSubmitted(
        message=f"Group task submitted : a = {x}, b = {y}",
        group_id=sent.task_id,
        individual_tasks=list(sent.child_ids),
        check_result_url=f"/result/group/{sent.task_id}",
    )


@router.get("/result/{task_id}", response_model=TaskResult, responses=RESULT_RESPONSES)
async def task_result(task_id: TaskId, user: ScansUser, runtime: Runtime) -> JSONResponse:
    """A task's (or a chain's) state and result."""
    if not await run_in_threadpool(runtime.tasks.owns_task, user.owner, task_id):
        raise await run_in_threadpool(_unknown, runtime, "task")
    state = await run_in_threadpool(tasks.task_state, runtime.celery, task_id)
    return JSONResponse(state.as_dict(), status_code=state.http_status)


@router.get(
    "/result/group/{group_id}",
    response_model=GroupResultView,
    responses={
        202: {"model": GroupResultView, "description": "some members are not done yet"},
        401: RESULT_RESPONSES[401],
        404: {"model": ErrorBody, "description": "no saved group with that id for this owner"},
        500: {"model": GroupResultView, "description": "a member failed"},
    },
)
async def group_result(group_id: TaskId, user: ScansUser, runtime: Runtime) -> JSONResponse:
    """All members of a group; 200 once every one succeeded."""
    if not await run_in_threadpool(runtime.tasks.owns_group, user.owner, group_id):
        raise await run_in_threadpool(_unknown, runtime, "group")
    found = await run_in_threadpool(tasks.group_state, runtime.celery, group_id)
    if found is None:
        raise not_found("group")
    status, members = found
    code = {"SUCCESS": 200, "FAILURE": 500}.get(status, 202)
    body = {
        "group_id": group_id,
        "status": status,
        "completed": sum(1 for m in members if m.status == "SUCCESS"),
        "total": len(members),
        "results": [m.as_dict() for m in members],
    }
    return JSONResponse(body, status_code=code)
