"""Request and response bodies, as they appear in the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A scan's body is defined with the scan (growbin.scan.views), shared with `growbin scan`.
from growbin.scan.views import ScanResult as ScanResult
from growbin.scan.views import ScanView as ScanView
from growbin.scan.views import StepState as StepState

# PostgreSQL text cannot hold NUL; logs should not hold ESC, nor its one-character C1 forms
# (U+009B is CSI: a terminal reads it as ESC [)
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"


class ErrorBody(BaseModel):
    error: str = Field(description="a stable code, e.g. too_large, broker_refused")
    detail: Any = Field(description="what went wrong and how to fix it")


class RefusedBody(ErrorBody):
    reason: str = Field(
        description="broker_nack, broker_unavailable, broker_timeout, result_store_unavailable, "
        "unrouted, publish_failed"
    )
    queue: str | None = Field(default=None, description="the full queue, on broker_nack")
    scan_id: str | None = None


class ScanUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_url: str = Field(min_length=1, max_length=2048, pattern=NO_CONTROL)
    hint: str | None = Field(default=None, max_length=100, pattern=NO_CONTROL)


class ScanAccepted(BaseModel):
    scan_id: str
    status_url: str
    events_url: str


class ScanPage(BaseModel):
    items: list[ScanView]
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page, or null at the end")


class TaskSubmitted(BaseModel):
    message: str
    task_id: str
    result_url: str


class GroupSubmitted(BaseModel):
    message: str
    group_id: str
    individual_tasks: list[str]
    check_result_url: str


class TaskResult(BaseModel):
    task_id: str
    status: str = Field(description="Celery state: PENDING, STARTED, RETRY, SUCCESS, FAILURE")
    result: Any = None
    error: str | None = None


class GroupResultView(BaseModel):
    group_id: str
    status: Literal["SUCCESS", "PENDING", "FAILURE"]
    completed: int
    total: int
    results: list[TaskResult]


class QueueView(BaseModel):
    name: str
    type: str | None = None
    role: str
    messages: int | None = None
    messages_ready: int | None = None
    messages_unacknowledged: int | None = None
    consumers: int | None = None
    publish_rate: float | None = Field(default=None, description="messages per second")
    deliver_rate: float | None = Field(default=None, description="deliveries + gets per second")
    ack_rate: float | None = None
    alert_depth: int | None = None
    over_alert_depth: bool = False
    policy: str | None = None
    exists: bool = True


class QueuesView(BaseModel):
    vhost: str
    queues: list[QueueView]


class DeadLetterSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    dead_letter_id: str
    state: str
    reason: str | None = None
    task_name: str | None = None
    task_id: str | None = None


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(default_factory=list, max_length=1000)
    all: bool = False
    to: str | None = Field(default=None, max_length=255, pattern=NO_CONTROL)
    task: str | None = Field(default=None, max_length=255, pattern=NO_CONTROL)
    queue: str | None = Field(default=None, max_length=255, pattern=NO_CONTROL)
    reason: str | None = Field(default=None, max_length=40, pattern=NO_CONTROL)
    exception: str | None = Field(default=None, max_length=255, pattern=NO_CONTROL)
    state: list[str] = Field(default_factory=list, max_length=10)
    older_than: str | None = Field(default=None, max_length=20, pattern=NO_CONTROL)
    newer_than: str | None = Field(default=None, max_length=20, pattern=NO_CONTROL)


class ReplayedView(BaseModel):
    dead_letter_id: str
    task_name: str
    task_id: str
    exchange: str
    routing_key: str
    from_archive: bool


class SkippedView(BaseModel):
    dead_letter_id: str
    why: str


class ReplayView(BaseModel):
    replayed: list[ReplayedView]
    skipped: list[SkippedView]


class Check(BaseModel):
    ok: bool
    seconds: float
    target: str | None = Field(default=None, description="where it looked, password masked")
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Check] | None = Field(
        default=None, description="each dependency's check: only for an admin key"
    )


class Liveness(BaseModel):
    status: Literal["ok"]
