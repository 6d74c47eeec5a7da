"""The topology model: exchanges, queues, routes, worker profiles, the beat schedule and guards.

Times are in seconds throughout the file; conversion to RabbitMQ's milliseconds happens only
where a broker argument or policy is built.
"""

from __future__ import annotations

import fnmatch
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class ExchangeType(StrEnum):
    DIRECT = "direct"
    TOPIC = "topic"
    FANOUT = "fanout"
    HEADERS = "headers"


class QueueType(StrEnum):
    CLASSIC = "classic"
    QUORUM = "quorum"


class Overflow(StrEnum):
    DROP_HEAD = "drop-head"
    REJECT_PUBLISH = "reject-publish"
    REJECT_PUBLISH_DLX = "reject-publish-dlx"


class DeadLetterStrategy(StrEnum):
    AT_MOST_ONCE = "at-most-once"
    AT_LEAST_ONCE = "at-least-once"


class QueueRole(StrEnum):
    """What a queue is for: work is consumed by a profile, the others are kept for people."""

    WORK = "work"
    DEAD_LETTER = "dead-letter"
    UNROUTABLE = "unroutable"


class Pool(StrEnum):
    PREFORK = "prefork"
    THREADS = "threads"
    GEVENT = "gevent"
    EVENTLET = "eventlet"
    SOLO = "solo"


class Exchange(_Strict):
    type: ExchangeType
    durable: bool = True
    alternate_exchange: str | None = Field(
        default=None,
        description="Where messages that match no binding go (set as a policy, not an argument)",
    )


class Binding(_Strict):
    exchange: str
    routing_key: str = ""


class Queue(_Strict):
    type: QueueType = QueueType.CLASSIC
    role: QueueRole = QueueRole.WORK
    bindings: list[Binding] = Field(default_factory=list)
    priority: int | None = Field(default=None, ge=1, le=255, description="x-max-priority")
    message_ttl: float | None = Field(default=None, gt=0, description="seconds")
    max_length: int | None = Field(default=None, ge=0)
    max_length_bytes: int | None = Field(default=None, ge=0)
    overflow: Overflow | None = None
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    dead_letter_strategy: DeadLetterStrategy | None = None
    delivery_limit: int | None = Field(default=None, ge=1)
    alert_depth: int | None = Field(
        default=None, ge=0, description="depth at which the alert rules page someone"
    )


class RetryPolicy(_Strict):
    max_retries: int = Field(default=3, ge=0)
    backoff_base: float = Field(default=1.0, ge=0, description="first delay, seconds")
    backoff_max: float = Field(default=60.0, ge=0, description="cap on one delay, seconds")
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (0-based), without jitter."""
        return float(min(self.backoff_max, self.backoff_base * (2**attempt)))


class Route(_Strict):
    exchange: str
    routing_key: str
    priority: int | None = Field(default=None, ge=0, le=255)
    retry: RetryPolicy | None = Field(default=None, description="overrides the profile's policy")
    time_limit: float | None = Field(default=None, gt=0, description="overrides the profile's")
    soft_time_limit: float | None = Field(default=None, gt=0)
    uses_eta: bool = Field(default=False, description="callers send this task with ETA/countdown")


class WorkerProfile(_Strict):
    queues: list[str] = Field(min_length=1)
    pool: Pool = Pool.PREFORK
    concurrency: int = Field(default=4, ge=1)
    prefetch_multiplier: int = Field(default=1, ge=0)
    acks_late: bool = True
    soft_time_limit: float | None = Field(default=None, gt=0)
    time_limit: float | None = Field(default=None, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    replicas: int = Field(default=1, ge=1, description="how many run in production (deploy files)")

    @model_validator(mode="after")
    def _soft_below_hard(self) -> WorkerProfile:
        if (
            self.soft_time_limit is not None
            and self.time_limit is not None
            and self.soft_time_limit >= self.time_limit
        ):
            raise ValueError(
                f"soft_time_limit ({self.soft_time_limit}) must be below time_limit "
                f"({self.time_limit}) so the task can clean up before it is killed"
            )
        return self


class ScheduleEntry(_Strict):
    task: str
    cron: str | None = Field(default=None, description="five fields: minute hour dom month dow")
    every: float | None = Field(default=None, gt=0, description="seconds")
    args: list[object] = Field(default_factory=list)
    kwargs: dict[str, object] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleEntry:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of `cron` (e.g. '0 2 * * *') or `every` (seconds)")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(
                f"cron {self.cron!r} must have five fields: minute hour day-of-month month "
                "day-of-week, e.g. '0 2 * * *' for 02:00 daily"
            )
        return self


class RateLimit(_Strict):
    """A cluster-wide limit on calls to one provider (or one provider's model).

    ``rate`` is a hard cap: no window of ``per`` seconds ever holds more calls. ``burst`` calls
    may go back to back; the rest are spaced ``per / (rate - burst + 1)`` apart, which is what
    keeps the cap exact (a plain token bucket of ``rate`` per ``per`` would allow ``rate + burst``).
    """

    rate: int = Field(ge=1, description="most calls in any window of `per` seconds")
    per: float = Field(default=60.0, gt=0, description="seconds")
    burst: int = Field(default=1, ge=1, description="calls that may go back to back")

    @model_validator(mode="after")
    def _burst_within_rate(self) -> RateLimit:
        if self.burst > self.rate:
            raise ValueError(
                f"burst ({self.burst}) must not exceed rate ({self.rate}): the cap of {self.rate} "
                f"calls per {self.per:g} s could not hold; lower burst (a tenth of rate is plenty)"
            )
        return self

    @property
    def interval(self) -> float:
        """Seconds between calls once the burst is spent."""
        return self.per / (self.rate - self.burst + 1)


class BreakerPolicy(_Strict):
    """When to stop calling a failing provider, and when to try it again."""

    failures: int = Field(default=5, ge=1, description="failures within `window` that open it")
    window: float = Field(default=60.0, gt=0, description="seconds")
    reset_after: float = Field(
        default=30.0, gt=0, description="seconds open before one probe call is let through"
    )


class Topology(_Strict):
    version: Literal[1] = 1
    name: str
    description: str = ""
    vhost: str = "/"
    exchanges: dict[str, Exchange] = Field(default_factory=dict)
    queues: dict[str, Queue] = Field(default_factory=dict)
    routes: dict[str, Route] = Field(default_factory=dict)
    profiles: dict[str, WorkerProfile] = Field(default_factory=dict)
    schedule: dict[str, ScheduleEntry] = Field(default_factory=dict)
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict,
        description="keyed `provider.model` (e.g. openai.gpt-5) or `provider` for all its models",
    )
    breakers: dict[str, BreakerPolicy] = Field(
        default_factory=dict, description="circuit breakers, keyed by provider (e.g. openai)"
    )

    def route_for(self, task_name: str) -> tuple[str, Route] | None:
        """The route of a task: an exact name wins, then the longest matching glob pattern."""
        if task_name in self.routes:
            return task_name, self.routes[task_name]
        matches = [
            (pattern, route)
            for pattern, route in self.routes.items()
            if any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(task_name, pattern)
        ]
        if not matches:
            return None
        return max(matches, key=lambda item: len(item[0]))

    def profiles_consuming(self, queue: str) -> list[str]:
        return [name for name, p in self.profiles.items() if queue in p.queues]

    def queues_bound_to(self, exchange: str) -> list[tuple[str, Binding]]:
        return [
            (qname, b)
            for qname, q in self.queues.items()
            for b in q.bindings
            if b.exchange == exchange
        ]
