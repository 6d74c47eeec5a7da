"""The base of every Growbin task: the route's retry policy, and dead letters that say why.

Celery acks a failed task by default, so without this a failure never reaches the dead-letter
queue. Here a failure is sorted at once: a transient error is retried with capped, jittered
exponential backoff until the route's budget is spent; a fatal error, or a spent budget, is
published to the queue's dead-letter exchange with an ``x-growbin-death`` header (see
:mod:`growbin.runtime.deadletter`) and only then acked. A hard time limit kills the task in its
pool process; the worker's main process dead-letters it the same way. A worker that dies
mid-task leaves the message unacked: RabbitMQ redelivers it, and a quorum queue's delivery limit
dead-letters a message that keeps killing its worker.
"""

from __future__ import annotations

import logging
import re
import socket
from typing import Any

from celery import Celery, Task
from celery.exceptions import Ignore, Reject, Retry, TimeLimitExceeded

from growbin.runtime.deadletter import DEATH_HEADER, DeathInfo, DeathReason, now_iso
from growbin.runtime.deadletter import describe_exception as describe
from growbin.runtime.failures import backoff_delay, is_transient
from growbin.settings import Settings
from growbin.topology.model import Topology
from growbin.topology.resolve import ResolvedRoute, resolve_route

logger = logging.getLogger("growbin.tasks")

FIRST_FAILURE_HEADER = "x-growbin-first-failure"
# Celery's native delayed delivery prefixes the routing key with 28 binary digits.
_DELAY_PREFIX = re.compile(r"^(?:[01]\.){28}")


def attach_platform(app: Celery, settings: Settings, topology: Topology) -> None:
    """Give tasks the settings and topology the app was built from (no globals)."""
    app.growbin_settings = settings
    app.growbin_topology = topology


def settings_of(app: Celery) -> Settings:
    settings = getattr(app, "growbin_settings", None)
    if not isinstance(settings, Settings):
        raise RuntimeError("this Celery app was not made by growbin.runtime.celery_app.create_app")
    return settings


def topology_of(app: Celery) -> Topology:
    topology = getattr(app, "growbin_topology", None)
    if not isinstance(topology, Topology):
        raise RuntimeError("this Celery app was not made by growbin.runtime.celery_app.create_app")
    return topology


class GrowbinTask(Task):  # type: ignore[misc]
    acks_late = True
    reject_on_worker_lost = True
    # The dead letter is published before the ack, so acking a failure loses nothing.
    acks_on_failure_or_timeout = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except (Retry, Ignore, Reject):
            raise
        except Exception as exc:
            self._handle_failure(exc, args, kwargs)
            raise

    def _handle_failure(self, exc: Exception, args: Any, kwargs: Any) -> None:
        route = resolve_route(topology_of(self.app), self.name)
        request = self.request
        attempt = int(request.retries or 0)
        transient = is_transient(exc)
        first_failure = _custom_header(request, FIRST_FAILURE_HEADER) or now_iso()
        if route is not None and transient and attempt < route.retry.max_retries:
            delay = backoff_delay(route.retry, attempt)
            logger.warning(
                "task %s[%s] attempt %d failed with %s: retrying in %.1fs",
                self.name,
                request.id,
                attempt + 1,
                type(exc).__name__,
                delay,
            )
            headers = {**(request.headers or {}), FIRST_FAILURE_HEADER: first_failure}
            raise self.retry(
                exc=exc, countdown=delay, max_retries=route.retry.max_retries, headers=headers
            )
        self.dead_letter(
            exc,
            task_id=str(request.id),
            args=args,
            kwargs=kwargs,
            attempts=attempt + 1,
            first_failure=first_failure,
            retryable=transient,
            route=route,
            delivery_info=request.delivery_info or {},
            headers=request.headers or {},
        )

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        # A hard time limit kills the pool process: __call__ never sees it, but the worker's
        # main process calls on_failure with TimeLimitExceeded before acking.
        if isinstance(exc, TimeLimitExceeded):
            route = resolve_route(topology_of(self.app), self.name)
            self.dead_letter(
                exc,
                task_id=task_id,
                args=args,
                kwargs=kwargs,
                attempts=1,
                first_failure=now_iso(),
                retryable=False,
                route=route,
                delivery_info={},
                headers={},
            )

    def dead_letter(
        self,
        exc: BaseException,
        *,
        task_id: str,
        args: Any,
        kwargs: Any,
        attempts: int,
        first_failure: str,
        retryable: bool,
        route: ResolvedRoute | None,
        delivery_info: dict[str, Any],
        headers: dict[str, Any],
    ) -> None:
        """Publish the task, as a Celery message, to its queue's dead-letter exchange."""
        exc_type, exc_message, traceback = describe(exc)
        exchange = route.exchange if route else str(delivery_info.get("exchange") or "")
        routing_key = (
            route.routing_key
            if route
            else _DELAY_PREFIX.sub("", str(delivery_info.get("routing_key") or ""))
        )
        info = DeathInfo(
            reason=DeathReason.FAILED.value,
            task=self.name,
            task_id=task_id,
            exchange=exchange,
            routing_key=routing_key,
            queue=(route.queue if route else None) or "",
            attempts=attempts,
            first_failure=first_failure,
            last_failure=now_iso(),
            exception_type=exc_type,
            exception_message=exc_message,
            traceback=traceback,
            retryable=retryable,
            worker=socket.gethostname(),
        )
        if route is None or route.dead_letter_exchange is None:
            logger.error(
                "task %s[%s] failed for good (%s: %s) but its queue has no dead-letter exchange; "
                "set dead_letter_exchange on the queue in the topology",
                self.name,
                task_id,
                exc_type,
                exc_message,
            )
            return
        # Keep the rest of a chain (and callbacks) so a replayed step carries on where it died.
        request = self.request if self.request.id == task_id else None
        message = self.app.amqp.create_task_message(
            task_id,
            self.name,
            list(args or ()),
            dict(kwargs or {}),
            retries=attempts - 1,
            chain=getattr(request, "chain", None),
            callbacks=getattr(request, "callbacks", None),
            errbacks=getattr(request, "errbacks", None),
            chord=getattr(request, "chord", None),
            root_id=getattr(request, "root_id", None),
            parent_id=getattr(request, "parent_id", None),
        )
        custom = {k: v for k, v in headers.items() if k.startswith("x-growbin-")}
        with self.app.producer_or_acquire() as producer:
            producer.publish(
                message.body,
                exchange=route.dead_letter_exchange,
                routing_key=route.dead_letter_routing_key,
                serializer="json",
                headers={**message.headers, **custom, DEATH_HEADER: info.as_header()},
                correlation_id=task_id,
                delivery_mode=2,
                retry=True,
            )
        self.on_dead_letter(info, args, kwargs)
        logger.error(
            "task %s[%s] dead-lettered after %d attempt(s): %s: %s",
            self.name,
            task_id,
            attempts,
            exc_type,
            exc_message,
        )

    def on_dead_letter(self, info: DeathInfo, args: Any, kwargs: Any) -> None:
        """Called after a dead letter is published; domain tasks record the failure."""


def _custom_header(request: Any, name: str) -> str | None:
    headers = getattr(request, "headers", None) or {}
    value = headers.get(name) if isinstance(headers, dict) else None
    if value is None:
        value = getattr(request, name, None)
    return str(value) if value else None
