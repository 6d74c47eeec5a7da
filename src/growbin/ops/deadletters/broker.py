"""Reading and writing the dead-letter queue over AMQP without losing a message.

Reading takes every message with ``basic.get`` and manual acks, up to the depth the queue had
when the read began, and holds them unacked. Whatever is not acked on purpose goes back when the
channel closes: RabbitMQ requeues unacked messages, and a classic queue puts them back in their
original order. So a read that only looks (``list``, ``sync``) changes nothing, and a crash in
the middle of any command loses nothing either (the broker requeues when the connection dies).

Publishing goes through a separate channel in confirm mode with ``mandatory``: a publish returns
only after RabbitMQ confirmed it, and raises on a nack, a missing confirm, a missing exchange or
a route that reaches no queue. Callers ack a dead letter only after its replay was confirmed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import amqp
from amqp import exceptions as amqp_errors
from kombu import Connection

from growbin.errors import ServiceUnavailableError
from growbin.ops.deadletters.errors import DeadLetterError, ReplayError
from growbin.ops.deadletters.message import RawMessage
from growbin.settings import mask_url
from growbin.topology.vhost import broker_vhost

SERVICE = "RabbitMQ"
_CONNECT_ERRORS = (OSError, amqp_errors.ConnectionError, amqp_errors.AccessRefused)


@dataclass(frozen=True)
class HeldMessage:
    """A message taken from the queue and not yet acked."""

    raw: RawMessage
    delivery_tag: int


class HeldBatch:
    """The queue's messages, held unacked until the batch closes (which requeues the rest)."""

    def __init__(self, channel: Any, messages: list[HeldMessage], depth: int) -> None:
        self._channel = channel
        self.messages = messages
        self.depth = depth  # ready messages when the read began
        self.acked: set[int] = set()

    def ack(self, held: HeldMessage) -> None:
        """Remove one message from the queue for good."""
        if held.delivery_tag in self.acked:
            return
        self._channel.basic_ack(held.delivery_tag)
        self.acked.add(held.delivery_tag)


class DeadLetterQueue:
    """One AMQP connection to one dead-letter (or unroutable) queue of one vhost."""

    def __init__(
        self,
        broker_url: str,
        queue: str,
        *,
        connect_timeout: float = 5.0,
        confirm_timeout: float = 5.0,
    ) -> None:
        self.queue = queue
        self.masked_url = mask_url(broker_url)
        self._vhost = broker_vhost(broker_url)
        self.confirm_timeout = confirm_timeout
        # confirm_publish puts every channel of the connection in confirm mode; the read
        # channel never publishes, so only the publish channel is affected in practice
        self._connection = Connection(
            broker_url,
            connect_timeout=connect_timeout,
            transport_options={"confirm_publish": True},
        )
        self._publisher: Any = None
        self._returned: list[str] = []

    @property
    def vhost(self) -> str:
        return self._vhost

    def __enter__(self) -> DeadLetterQueue:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        try:
            self._connection.connect()
        except _CONNECT_ERRORS as error:
            self._connection.release()
            raise self._unavailable(error) from error

    def close(self) -> None:
        # closing the connection requeues every message still held unacked
        self._publisher = None
        self._connection.release()

    def _unavailable(self, error: BaseException) -> ServiceUnavailableError:
        return ServiceUnavailableError(SERVICE, self.masked_url, str(error) or type(error).__name__)

    def _channel(self) -> Any:
        try:
            channel = self._connection.channel()
        except _CONNECT_ERRORS as error:
            raise self._unavailable(error) from error
        # keep bodies as bytes: the amqp library would decode them by content_encoding
        channel.auto_decode = False
        return channel

    def depth(self) -> int:
        """Ready messages in the queue now (held unacked ones are not counted)."""
        channel = self._channel()
        try:
            return self._depth(channel)
        finally:
            _close_quietly(channel)

    def _depth(self, channel: Any) -> int:
        try:
            ok = channel.queue_declare(queue=self.queue, passive=True)
        except amqp_errors.NotFound:
            raise DeadLetterError(
                f"queue {self.queue!r} does not exist in vhost {self.vhost!r}: "
                "create it with `growbin topology apply`"
            ) from None
        return int(ok.message_count)

    @contextmanager
    def hold(self) -> Iterator[HeldBatch]:
        """Take every message (up to the depth at the start) and hold it until the block ends.

        Messages the block acked are gone; all others are requeued when the channel closes,
        also when the block raises.
        """
        channel = self._channel()
        try:
            depth = self._depth(channel)
            messages: list[HeldMessage] = []
            # a new dead letter arriving during the read is left for the next one, so the
            # loop ends even while a failing worker keeps adding to the queue
            while len(messages) < depth:
                message = channel.basic_get(queue=self.queue, no_ack=False)
                if message is None:
                    break
                messages.append(_held(message))
            yield HeldBatch(channel, messages, depth)
        except _CONNECT_ERRORS as error:
            raise self._unavailable(error) from error
        finally:
            _close_quietly(channel)

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        headers: Mapping[str, Any],
        properties: Mapping[str, Any],
    ) -> None:
        """Publish and wait for RabbitMQ's confirm; raise ReplayError if it is not confirmed."""
        route = f"exchange {exchange or '(default)'!r} with routing key {routing_key!r}"
        channel = self._publish_channel()
        self._returned.clear()
        message = amqp.Message(body=body, application_headers=dict(headers), **properties)
        try:
            channel.basic_publish_confirm(
                message,
                exchange=exchange,
                routing_key=routing_key,
                mandatory=True,
                confirm_timeout=self.confirm_timeout,
            )
        except amqp_errors.MessageNacked:
            raise ReplayError(f"RabbitMQ refused (nacked) the replay to {route}") from None
        except amqp_errors.NotFound as error:
            self._publisher = None  # the broker closed the channel
            raise ReplayError(
                f"cannot replay to {route}: {error.reply_text}; check the exchange name "
                "(`--to exchange:routing_key`) or run `growbin topology apply`"
            ) from None
        except TimeoutError:
            self._publisher = None  # a late confirm must not be read as the next one's
            raise ReplayError(
                f"RabbitMQ did not confirm the replay to {route} within "
                f"{self.confirm_timeout} s (GROWBIN_PUBLISH_CONFIRM_TIMEOUT)"
            ) from None
        except amqp_errors.ChannelError as error:
            self._publisher = None
            raise ReplayError(f"RabbitMQ refused the replay to {route}: {error}") from None
        except _CONNECT_ERRORS as error:
            raise self._unavailable(error) from error
        if self._returned:
            raise ReplayError(
                f"no queue is bound for {route} ({self._returned[0]}), so the replay would be "
                "lost; pick a route that reaches a queue with `--to exchange:routing_key`"
            )

    def _publish_channel(self) -> Any:
        if self._publisher is None or not self._publisher.is_open:
            # basic_publish_confirm puts the channel in confirm mode (confirm.select) on its
            # first publish, then waits for each basic.ack / basic.nack
            channel = self._channel()
            channel.events["basic_return"].add(self._on_return)
            self._publisher = channel
        return self._publisher

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        # RabbitMQ sends basic.return before the confirm of a mandatory publish it could not
        # route; publish() checks this list after the confirm arrives
        self._returned.append(str(exc))


def _held(message: Any) -> HeldMessage:
    properties = dict(message.properties)
    headers = dict(properties.pop("application_headers", None) or {})
    info = message.delivery_info
    body = message.body
    if isinstance(body, str):  # only if auto_decode was on after all
        body = body.encode(properties.get("content_encoding") or "utf-8")
    raw = RawMessage(
        body=bytes(body),
        properties=properties,
        headers=headers,
        exchange=str(info.get("exchange", "")),
        routing_key=str(info.get("routing_key", "")),
    )
    return HeldMessage(raw=raw, delivery_tag=int(info["delivery_tag"]))


def _close_quietly(channel: Any) -> None:
    # a channel the broker already closed has had its messages requeued
    with suppress(Exception):
        channel.close()
