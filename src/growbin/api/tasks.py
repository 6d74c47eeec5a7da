"""Seed 003's task patterns (solo, chain, group) and its result semantics.

Celery cannot tell an unknown task id from a queued one: both read as PENDING, since nothing is
stored for a task until a worker starts it. So the API records every id it issues in Redis
(with its owner, for as long as results are kept) before publishing it, and forgets it again
if the broker refuses. An id the API never issued, or issued to someone else, is 404; a
recorded id without a stored state is queued (202).

States are read with ``cache=False``: Celery's result cache keeps the first finished state it
saw, so a task that failed and was then replayed from the dead-letter queue would otherwise
keep answering FAILURE after its replay succeeded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from celery import Celery, chain, group

from growbin.api.publishing import Refusals
from growbin.api.result_store import ResultStore, ResultStoreUnavailableError, StoreRestart
from growbin.errors import ServiceUnavailableError
from growbin.runtime.kv import KeyValue

# the longest an example task may sleep (growbin.jobs.demo clamps to the same): a sleeping task
# holds a worker slot that other keys' tasks need
MAX_DELAY = 5.0
ADD = "growbin.demo.add"
MULTIPLY = "growbin.demo.multiply"
SUM_MULTIPLY = "growbin.demo.sum_multiply"

NO_TOPOLOGY = Refusals()
IN_PROGRESS = frozenset({"PENDING", "RECEIVED", "STARTED", "RETRY"})
FAILED = frozenset({"FAILURE", "REVOKED", "REJECTED", "IGNORED"})


class TaskRegistry:
    """Which task and group ids the API issued, and to whom.

    ``store`` probes the Redis the records live in: whether it is up before anything is
    published, and whether it restarted empty, for an honest 404.
    """

    def __init__(self, kv: KeyValue, ttl: float, store: ResultStore | None = None) -> None:
        self.kv = kv
        self.ttl = ttl
        self.store = store

    @staticmethod
    def _key(kind: str, ident: str) -> str:
        return f"growbin:api:{kind}:{ident}"

    def record(self, owner: str, task_ids: Sequence[str] = (), group_id: str | None = None) -> None:
        if self.store is not None:
            self.store.check()  # at once, before the store client's own retries
        try:
            for task_id in task_ids:
                self.kv.set(self._key("task", task_id), owner, ttl=self.ttl)
            if group_id is not None:
                self.kv.set(self._key("group", group_id), owner, ttl=self.ttl)
        except ServiceUnavailableError as exc:
            fix = self.store.fix if self.store is not None else "check that Redis is running"
            raise ResultStoreUnavailableError(exc.url, str(exc.__cause__ or exc), fix) from exc

    def restart(self) -> StoreRestart | None:
        """When the records' Redis restarted without AOF, if ids it held may still be asked for."""
        return self.store.restart(within=self.ttl) if self.store is not None else None

    def forget(self, task_ids: Sequence[str] = (), group_id: str | None = None) -> None:
        keys = [self._key("task", t) for t in task_ids]
        if group_id is not None:
            keys.append(self._key("group", group_id))
        self.kv.delete(*keys)

    def owns_task(self, owner: str, task_id: str) -> bool:
        return self.kv.get(self._key("task", task_id)) == owner

    def owns_group(self, owner: str, group_id: str) -> bool:
        return self.kv.get(self._key("group", group_id)) == owner


@dataclass(frozen=True)
class Submitted:
    task_id: str
    child_ids: tuple[str, ...] = ()


class Releasable(Protocol):
    def release(self) -> None: ...


# Takes a quota slot for each task id before anything is published (raising when the key has
# too many in flight); the slots are given back when the broker refuses.
Gate = Callable[[Sequence[str]], Releasable]


def _publish(
    registry: TaskRegistry,
    refusals: Refusals,
    owner: str,
    ids: Sequence[str],
    send: Callable[[], Any],
    group_id: str | None = None,
    gate: Gate | None = None,
) -> None:
    hold = gate(ids) if gate is not None else None
    try:
        with refusals.guard():
            registry.record(owner, ids, group_id)
        try:
            with refusals.guard():
                send()
        except Exception:
            registry.forget(ids, group_id)
            raise
    except Exception:
        if hold is not None:
            hold.release()
        raise


def submit_add(
    app: Celery,
    registry: TaskRegistry,
    owner: str,
    a: float,
    b: float,
    delay: float = 0.0,
    refusals: Refusals = NO_TOPOLOGY,
    gate: Gate | None = None,
) -> Submitted:
    task_id = str(uuid.uuid4())
    kwargs = {"delay": min(delay, MAX_DELAY)} if delay else {}
    _publish(
        registry,
        refusals,
        owner,
        [task_id],
        lambda: app.send_task(ADD, args=(a, b), kwargs=kwargs, task_id=task_id),
        gate=gate,
    )
    return Submitted(task_id)


def submit_chain(
    app: Celery,
    registry: TaskRegistry,
    owner: str,
    a: float,
    b: float,
    refusals: Refusals = NO_TOPOLOGY,
    gate: Gate | None = None,
) -> Submitted:
    """add(a, b), then the sum times each of a and b; the chain's id is its last task's."""
    flow = chain(app.signature(ADD, args=(a, b)), app.signature(SUM_MULTIPLY, args=(a, b)))
    last = flow.freeze()  # ids are fixed now, so they can be recorded before publishing
    ids = [str(last.parent.id), str(last.id)]
    _publish(registry, refusals, owner, ids, flow.apply_async, gate=gate)
    return Submitted(str(last.id), tuple(ids))


def submit_group(
    app: Celery,
    registry: TaskRegistry,
    owner: str,
    a: float,
    b: float,
    refusals: Refusals = NO_TOPOLOGY,
    gate: Gate | None = None,
) -> Submitted:
    """add(a, b) and multiply(a, b) in parallel; the group is saved so it can be read back."""
    flow = group(app.signature(ADD, args=(a, b)), app.signature(MULTIPLY, args=(a, b)))
    frozen = flow.freeze()
    children = [str(r.id) for r in frozen.results]

    def send() -> None:
        result = flow.apply_async()
        result.save()  # GroupResult meta is not stored by Celery on its own (seed 003)

    _publish(registry, refusals, owner, children, send, group_id=str(frozen.id), gate=gate)
    return Submitted(str(frozen.id), tuple(children))


@dataclass(frozen=True)
class TaskState:
    task_id: str
    status: str
    result: Any = None
    error: str | None = None

    @property
    def http_status(self) -> int:
        if self.status == "SUCCESS":
            return 200
        if self.status in FAILED:
            return 500
        return 202

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "status": self.status,
            "result": self.result,
            "error": self.error,
        }


def task_state(app: Celery, task_id: str) -> TaskState:
    meta = app.backend.get_task_meta(task_id, cache=False)
    status = str(meta.get("status", "PENDING"))
    result = meta.get("result")
    if status in FAILED:
        error = (
            f"{type(result).__name__}: {result}"
            if isinstance(result, BaseException)
            else str(result)
        )
        return TaskState(task_id, status, error=error)
    if status != "SUCCESS":
        return TaskState(task_id, status)
    return TaskState(task_id, status, result=result)


def group_state(app: Celery, group_id: str) -> tuple[str, list[TaskState]] | None:
    """The group's overall status and its members' states; None if no group was saved."""
    saved = app.GroupResult.restore(group_id, backend=app.backend)
    if saved is None:
        return None
    states = [task_state(app, str(child.id)) for child in saved.results]
    if any(s.status in FAILED for s in states):
        return "FAILURE", states
    if all(s.status == "SUCCESS" for s in states):
        return "SUCCESS", states
    return "PENDING", states
