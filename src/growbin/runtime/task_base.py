"""The base of every Growbin task: the route's retry policy, and dead letters that say why.

Celery acks a failed task by default, so without this a failure never reaches the dead-letter
queue. Here a failure is sorted at once: a transient error is retried with capped, jittered
exponential backoff until the route's budget is spent; a fatal error, or a spent budget, is
published to the queue's dead-letter exchange with an ``x-growbin-death`` header (see
:mod:`growbin.runtime.deadletter`) and only then acked. A hard time limit kills the task in its
pool process; the worker's main process dead-letters it the same way. A worker that dies
mid-task leaves the message unacked: RabbitMQ redelivers it, and a quorum queue's delivery limit
dead-letters a message that keeps killing its worker.

A task the guards defer (:class:`growbin.guard.errors.Deferred`: a rate limit is spent, or
another run holds the same idempotency key) is not a failure. Sleeping in the worker would hold
a pool slot, and a normal retry would spend the budget; instead the same message (same id,
same ``retries``, same chain) is published again with a countdown, confirmed by the broker, and
only then is the current delivery acked (by raising ``Ignore``). A crash between the two leaves
both copies: at least once, never lost. A task deferred for longer than ``MAX_DEFER`` seconds
is handled as a transient failure after all, so a limit that never frees up ends in a dead
letter that names it instead of deferring forever.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import time
from typing import Any, NoReturn

from celery import Celery, Task
from celery.exceptions import Ignore, Reject, Retry, TimeLimitExceeded

from growbin.guard.errors import Deferred
from growbin.guard.scope import operation
from growbin.runtime.deadletter import DEATH_HEADER, DeathInfo, DeathReason, now_iso
from growbin.runtime.deadletter import describe_exception as describe
from growbin.runtime.failures import defer_countdown, is_transient, retry_countdown
from growbin.runtime.settlement import guard_tracer, mark_settled
from growbin.settings import Settings
from growbin.topology.declare import DELAY_EXCHANGE
from growbin.topology.model import Topology
from growbin.topology.resolve import ResolvedRoute, resolve_route

logger = logging.getLogger("growbin.tasks")

FIRST_FAILURE_HEADER = "x-growbin-first-failure"
DEFERRED_SINCE_HEADER = "x-growbin-deferred-since"  # epoch seconds of the first deferral
DEFERRALS_HEADER = "x-growbin-deferrals"
# Seconds a task may be deferred in all before a deferral counts as a failure (proposed
# setting: GROWBIN_GUARD_MAX_DEFER).
MAX_DEFER = 900.0
# RabbitMQ (before 4.0.1) drops a message dead-lettered into a queue its x-death already names,
# with no rejection in between (cycle detection): a retry or deferral that kept them would vanish
# in the delayed-delivery queues the second time it passed one. Celery strips them from the
# headers it copies into a retry, but a retry or deferral here passes the request's headers
# itself (to carry the x-growbin-* ones), which replaces Celery's filtered copy: so strip here.
_DEATH_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
# Celery's native delayed delivery prefixes the routing key with 28 binary digits (one per
# power-of-two delay level, kombu's calculate_routing_key); a message it hands back arrives with
# that key, from its delivery exchange.
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
    # acks_late is left to the configuration (task_acks_late), which the worker sets from its
    # profile before the tasks are bound: true by default; a profile's `acks_late: false` acks
    # each task on receipt (lint GB304 says what that loses). Failures are dead-lettered by
    # publishing, not by rejecting, so dead letters work either way.
    reject_on_worker_lost = True
    # The dead letter is published before the ack, so acking a failure loses nothing.
    acks_on_failure_or_timeout = True

    # Celery stores the tracer it builds for a task here (at consumer start, and in each
    # prefork child). Wrapped, so that a failed result-backend write after the body still ends
    # in an ack or a requeue instead of a delivery that is never settled (see settlement.py).
    @property
    def __trace__(self) -> Any:
        return self.__dict__.get("_growbin_trace")

    @__trace__.setter
    def __trace__(self, tracer: Any) -> None:
        self.__dict__["_growbin_trace"] = guard_tracer(self, tracer)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._restore_route(self.request.delivery_info)
        try:
            # Guards scope idempotency keys by the task id (see growbin.guard.scope).
            with operation(str(self.request.id) if self.request.id else None):
                return super().__call__(*args, **kwargs)
        except (Retry, Ignore, Reject):
            raise
        except Deferred as exc:
            if self._may_defer(exc):
                self._defer(exc, args, kwargs)
            self._handle_failure(exc, args, kwargs)
            raise
        except Exception as exc:
            self._handle_failure(exc, args, kwargs)
            raise

    def _restore_route(self, info: Any) -> None:
        """Make a delayed delivery look like the route's own delivery.

        A countdown, retry or deferral comes back from RabbitMQ's delayed delivery with Celery's
        delivery exchange and ``<28 bits>.<queue>`` as routing key. Steps, hooks and journals
        want the route's exchange and key, and a retry Celery builds from this delivery (one
        that names no queue) must go out through the route again, not into the delay chain's
        exit, where nothing matches the route's key.
        """
        if not isinstance(info, dict) or not isinstance(info.get("routing_key"), str):
            return
        key = info["routing_key"]
        if not _DELAY_PREFIX.match(key):
            return
        route = resolve_route(topology_of(self.app), self.name)
        if route is not None:
            info["exchange"], info["routing_key"] = route.exchange, route.routing_key
        else:
            info["exchange"], info["routing_key"] = DELAY_EXCHANGE, _DELAY_PREFIX.sub("", key)

    def _may_defer(self, exc: Deferred) -> bool:
        request = self.request
        if request.called_directly or request.is_eager:
            return False  # nothing to republish: the caller gets the error
        since = custom_header(request, DEFERRED_SINCE_HEADER)
        max_defer = float(getattr(settings_of(self.app), "guard_max_defer", None) or MAX_DEFER)
        if since is not None and time.time() - float(since) > max_defer:
            logger.warning(
                "task %s[%s] has been deferred for over %.0fs (%s): handling it as a failure",
                self.name,
                request.id,
                max_defer,
                exc,
            )
            return False
        return True

    def _defer(self, exc: Deferred, args: Any, kwargs: Any) -> NoReturn:
        """Publish this task again for later (same id, same retries), then ack this delivery."""
        request = self.request
        countdown = defer_countdown(exc.retry_after)
        deferrals = int(custom_header(request, DEFERRALS_HEADER) or 0) + 1
        headers = {
            **_republished(request.headers),
            DEFERRED_SINCE_HEADER: custom_header(request, DEFERRED_SINCE_HEADER)
            or f"{time.time():.3f}",
            DEFERRALS_HEADER: str(deferrals),
        }
        signature = self.signature_from_request(
            request,
            args,
            kwargs,
            queue=_queue_of(resolve_route(topology_of(self.app), self.name)),
            countdown=countdown,
            retries=request.retries,
            headers=headers,
        )
        try:
            signature.apply_async()  # returns once the broker confirmed it (publisher confirms)
        except Exception as publish_error:
            if self.acks_late:
                # Not acked, not republished: let RabbitMQ dead-letter it (it says why) rather
                # than requeue it at once into a broker that just refused a publish.
                raise Reject(publish_error, requeue=False) from exc
            # Acked on receipt (the profile's acks_late: false): there is nothing left to
            # reject, so the dead letter is published here, naming the refused deferral.
            self.dead_letter(
                publish_error,
                task_id=str(request.id),
                args=args,
                kwargs=kwargs,
                attempts=int(request.retries or 0) + 1,
                first_failure=custom_header(request, FIRST_FAILURE_HEADER) or now_iso(),
                retryable=True,
                route=resolve_route(topology_of(self.app), self.name),
                delivery_info=request.delivery_info or {},
                headers=request.headers or {},
            )
            raise Ignore() from exc
        logger.debug(
            "task %s[%s] deferred %ds (deferral %d): %s",
            self.name,
            request.id,
            countdown,
            deferrals,
            exc,
        )
        raise Ignore()

    def _handle_failure(self, exc: Exception, args: Any, kwargs: Any) -> None:
        route = resolve_route(topology_of(self.app), self.name)
        request = self.request
        attempt = int(request.retries or 0)
        transient = is_transient(exc)
        first_failure = custom_header(request, FIRST_FAILURE_HEADER) or now_iso()
        if route is not None and transient and attempt < route.retry.max_retries:
            # An open breaker (or a Retry-After) says when trying again can help: not sooner.
            # RabbitMQ's delayed delivery counts whole seconds (Celery truncates, and refuses a
            # countdown that truncates to 0): round up, so a retry never comes early
            delay = math.ceil(retry_countdown(route.retry, attempt, exc))
            logger.warning(
                "task %s[%s] attempt %d failed with %s: retrying in %.1fs",
                self.name,
                request.id,
                attempt + 1,
                type(exc).__name__,
                delay,
            )
            headers = {**_republished(request.headers), FIRST_FAILURE_HEADER: first_failure}
            try:
                raise self.retry(
                    exc=exc,
                    countdown=delay,
                    max_retries=route.retry.max_retries,
                    headers=headers,
                    queue=_queue_of(route),
                )
            except Retry:
                mark_settled(request.id)  # the retry copy is published
                raise
            except Reject as refused:  # Celery's answer to a retry the broker would not take
                if self.acks_late:
                    raise  # RabbitMQ dead-letters the unacked delivery
                # acked on receipt (acks_late: false): nothing is left to reject, so the dead
                # letter below is all that keeps the task
                logger.error(
                    "task %s[%s] could not be retried (%s): dead-lettering it",
                    self.name,
                    request.id,
                    refused.reason,
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
        mark_settled(task_id)
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


def _queue_of(route: ResolvedRoute | None) -> str | None:
    """The queue a retried or deferred copy goes to: the route's (its Celery queue names the
    delay exchange, so a countdown takes RabbitMQ's delayed delivery, see declare.py)."""
    return route.queue if route is not None else None


def _republished(headers: Any) -> dict[str, Any]:
    """The headers a retried or deferred copy keeps: all but RabbitMQ's death records."""
    if not isinstance(headers, dict):
        return {}
    return {k: v for k, v in headers.items() if k not in _DEATH_HEADERS}


def custom_header(request: Any, name: str) -> str | None:
    """A header the task was published with (Celery exposes custom headers either way)."""
    headers = getattr(request, "headers", None) or {}
    value = headers.get(name) if isinstance(headers, dict) else None
    if value is None:
        value = getattr(request, name, None)
    return str(value) if value else None
