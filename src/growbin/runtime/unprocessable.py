"""Messages no worker can run end as dead letters that say why, never acked and gone.

Celery's consumer acks a message whose body does not decode, or whose content type it does not
accept, before any task code or signal runs (``on_decode_error``); it rejects one with an unknown
task name or invalid headers (``on_unknown_task``, ``on_invalid_task``, ``on_unknown_message``),
and RabbitMQ's dead letter then says only "rejected". Growbin's workers run
:class:`UnprocessableConsumer` instead (``worker_consumer`` in the app's configuration). Before
Celery's handler sees a message, :func:`growbin.runtime.task_message.diagnose` checks it. A
message that fails is published to its queue's dead-letter exchange (from the topology) with its
original body bytes, content type (application/octet-stream when it had none), properties and
headers, plus the ``x-growbin-death`` header naming the reason and the exception; only after
RabbitMQ confirmed that publish is the message acked. If the publish fails, the message is
rejected without requeue, so RabbitMQ's own dead-lettering still keeps it. Celery's four
callbacks above dead-letter the same way, for anything the checks let through.

The body is decoded in the consumer either way: Celery's strategy reads ``message.payload``
for every task message, and kombu caches the result, so the checks cost no second decode.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from celery.exceptions import NotRegistered
from celery.utils.objects import Bunch
from celery.worker.consumer.consumer import Consumer
from kombu.exceptions import ContentDisallowed

from growbin.runtime.deadletter import DEATH_HEADER, DeathInfo, DeathReason, now_iso
from growbin.runtime.deadletter import describe_exception as describe
from growbin.runtime.task_base import settings_of, topology_of
from growbin.runtime.task_message import (
    Unprocessable,
    classify,
    content_type_of,
    diagnose,
    disallowed,
    malformed,
    undecodable,
)
from growbin.topology.matching import destinations
from growbin.topology.model import Topology

logger = logging.getLogger("growbin.unprocessable")

# Celery's native delayed delivery prefixes the routing key with 28 binary digits.
_DELAY_PREFIX = re.compile(r"^(?:[01]\.){28}")
# A message without a content type is published again as what it is: bytes.
OCTET_STREAM = "application/octet-stream"
# AMQP properties the dead letter keeps. Left out: expiration (a per-message TTL would expire
# the dead letter too), user_id (RabbitMQ refuses one other than the publisher's).
KEPT_PROPERTIES = ("correlation_id", "reply_to", "message_id", "timestamp", "type", "app_id")
# Bounded, because the consumer waits for it and holds no other message meanwhile.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


def _accepted(app: Any) -> str:
    return ", ".join(sorted(app.conf.accept_content or ())) or "(none)"


def raw_body(message: Any) -> bytes:
    """The body bytes as published (the amqp library may have decoded them to text)."""
    body = message.body
    if isinstance(body, str):
        return body.encode(message.content_encoding or "utf-8")
    return bytes(body or b"")


@dataclass(frozen=True)
class DeadLetterTarget:
    exchange: str
    routing_key: str


def dead_letter_target(topology: Topology, queue: str, routing_key: str) -> DeadLetterTarget | None:
    """Where ``queue`` dead-letters to; RabbitMQ keeps the message's key unless one is set."""
    declared = topology.queues.get(queue)
    if declared is None or not declared.dead_letter_exchange:
        return None
    return DeadLetterTarget(
        declared.dead_letter_exchange, declared.dead_letter_routing_key or routing_key
    )


def death_info(message: Any, problem: Unprocessable, queue: str, worker: str) -> DeathInfo:
    headers = message.headers if isinstance(message.headers, Mapping) else {}
    properties = message.properties or {}
    delivery = message.delivery_info or {}
    exc_type, exc_message, traceback = describe(problem.error)
    if isinstance(problem.error, KeyError) and problem.error.args:
        exc_message = str(problem.error.args[0])  # str(KeyError) would quote the whole text
    task = headers.get("task")
    task_id = headers.get("id") or properties.get("message_id") or properties.get("correlation_id")
    retries = headers.get("retries")
    now = now_iso()
    return DeathInfo(
        reason=problem.reason.value,
        task=task if isinstance(task, str) else "",
        task_id=str(task_id or ""),
        exchange=str(delivery.get("exchange") or ""),
        routing_key=_DELAY_PREFIX.sub("", str(delivery.get("routing_key") or "")),
        queue=queue,
        attempts=(retries + 1) if isinstance(retries, int) and retries >= 0 else 1,
        first_failure=now,
        last_failure=now,
        exception_type=exc_type,
        exception_message=exc_message,
        traceback=traceback,
        retryable=False,
        worker=worker,
    )


class UnprocessableConsumer(Consumer):  # type: ignore[misc]
    """Celery's worker consumer, dead-lettering (never acking away) what it cannot run."""

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        handle: Callable[[Any], Any] = super().create_task_handler(*args, **kwargs)
        strategies = self.strategies  # updated in place when tasks are (re)loaded
        accepted = _accepted(self.app)

        def on_task_received(message: Any) -> Any:
            problem = diagnose(message, strategies, accepted)
            if problem is not None:
                self.dead_letter_unprocessable(message, problem)
                return None
            return handle(message)

        return on_task_received

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        if isinstance(exc, ContentDisallowed):
            problem = disallowed(message, exc, _accepted(self.app))
        else:
            problem = undecodable(message, exc)
        self.dead_letter_unprocessable(message, problem)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self.dead_letter_unprocessable(
            message, malformed("not a Celery task message: it has no 'task' header")
        )

    def on_unknown_task(self, body: Any, message: Any, exc: BaseException) -> None:
        name = (message.headers or {}).get("task")
        if name is None and isinstance(body, Mapping):
            name = body.get("task")  # protocol 1
        self.dead_letter_unprocessable(
            message,
            Unprocessable(
                DeathReason.UNREGISTERED,
                NotRegistered(f"task {name!r} is not registered in this worker"),
            ),
        )

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        self.dead_letter_unprocessable(message, Unprocessable(classify(exc), exc))

    def dead_letter_unprocessable(self, message: Any, problem: Unprocessable) -> None:
        """Publish ``message`` to its queue's dead-letter exchange, confirmed, then ack it.

        Without a dead-letter exchange, or when the publish fails, reject it without requeue:
        RabbitMQ dead-letters it if a policy says where (x-death reason "rejected").
        """
        topology = topology_of(self.app)
        queue = self._queue_of(message, topology)
        info = death_info(message, problem, queue or "", self.hostname or socket.gethostname())
        where = f"{info.queue or 'an unknown queue'} ({info.exchange}:{info.routing_key})"
        target = dead_letter_target(topology, queue, info.routing_key) if queue else None
        if target is None:
            logger.error(
                "message on %s cannot run (%s: %s: %s) and the topology names no dead-letter "
                "exchange for its queue: rejected without requeue; set dead_letter_exchange "
                "on the queue",
                where,
                info.reason,
                info.exception_type,
                info.exception_message,
            )
            message.reject_log_error(logger, self.connection_errors, requeue=False)
            return
        try:
            self._publish(message, target, info)
        except Exception as error:
            logger.error(
                "message on %s cannot run (%s: %s) and publishing its dead letter to %s:%s "
                "failed (%s: %s): rejected without requeue, so RabbitMQ dead-letters it",
                where,
                info.reason,
                info.exception_message,
                target.exchange,
                target.routing_key,
                type(error).__name__,
                error,
            )
            message.reject_log_error(logger, self.connection_errors, requeue=False)
            return
        message.ack_log_error(logger, self.connection_errors)
        logger.error(
            "message on %s dead-lettered as %s (task %s, id %s, %s, %d bytes): %s: %s",
            where,
            info.reason,
            info.task or "-",
            info.task_id or "-",
            content_type_of(message),
            len(raw_body(message)),
            info.exception_type,
            info.exception_message,
        )
        self._record_failure(message, problem)

    def _publish(self, message: Any, target: DeadLetterTarget, info: DeathInfo) -> None:
        headers = dict(message.headers or {})
        headers[DEATH_HEADER] = info.as_header()
        properties = message.properties or {}
        kept = {k: properties[k] for k in KEPT_PROPERTIES if properties.get(k) is not None}
        timeout = settings_of(self.app).publish_confirm_timeout
        with self.app.producer_or_acquire() as producer:
            # returns once RabbitMQ confirmed it (confirm_publish); raises on a nack or timeout
            producer.publish(
                raw_body(message),
                exchange=target.exchange,
                routing_key=target.routing_key,
                content_type=message.content_type or OCTET_STREAM,
                content_encoding=message.content_encoding or "binary",
                headers=headers,
                priority=properties.get("priority") or 0,
                delivery_mode=2,
                retry=True,
                retry_policy=PUBLISH_RETRY,
                timeout=timeout,
                confirm_timeout=timeout,
                **kept,
            )

    def _queue_of(self, message: Any, topology: Topology) -> str | None:
        """The queue the message came from: by its consumer tag, else by its route."""
        delivery = message.delivery_info or {}
        consumer = self.task_consumer
        tag = delivery.get("consumer_tag")
        # kombu keeps no public map from consumer tag to queue
        for name, active in (getattr(consumer, "_active_tags", None) or {}).items():
            if active == tag:
                return str(name)
        consumed = {q.name for q in (getattr(consumer, "queues", None) or ())}
        routing_key = _DELAY_PREFIX.sub("", str(delivery.get("routing_key") or ""))
        exchange = str(delivery.get("exchange") or "")
        reached = [q for q in destinations(topology, exchange, routing_key) if q in consumed]
        return reached[0] if len(reached) == 1 else None

    def _record_failure(self, message: Any, problem: Unprocessable) -> None:
        """Tell a caller waiting on the task's result that it failed, as Celery does for an
        unknown task. Best effort: the dead letter is what counts."""
        headers = message.headers or {}
        task_id, name = headers.get("id"), headers.get("task")
        if not (isinstance(task_id, str) and task_id and isinstance(name, str)):
            return
        properties = message.properties or {}
        request = Bunch(
            name=name,
            chord=None,
            root_id=headers.get("root_id"),
            correlation_id=properties.get("correlation_id"),
            reply_to=properties.get("reply_to"),
            errbacks=None,
        )
        try:
            self.app.backend.mark_as_failure(task_id, problem.error, request=request)
        except Exception as error:
            logger.warning(
                "could not record the failure of task %s[%s] in the result backend: %s",
                name,
                task_id,
                error,
            )
