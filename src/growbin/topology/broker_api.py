"""A small typed client for the RabbitMQ management HTTP API (the `rabbitmq_management` plugin).

Policies and queue statistics are only reachable through this API, not through AMQP, so plan and
apply talk to it rather than to the broker's AMQP port.

The management database is eventually consistent: a queue's ``messages``, ``consumers`` and
``policy`` fields are refreshed by statistics events (every 5 s by default), so they can be
``None`` or stale right after a change. Object lists (queues, exchanges, bindings, policies) are
read from the broker's metadata store and are current.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from growbin.errors import BrokerApiError, ServiceUnavailableError
from growbin.settings import mask_url

SERVICE = "RabbitMQ management API"
FIX = (
    "enable it with `rabbitmq-plugins enable rabbitmq_management` "
    "and check GROWBIN_RABBITMQ_API_URL"
)
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Overview:
    rabbitmq_version: str
    management_version: str
    cluster_name: str


@dataclass(frozen=True)
class LiveExchange:
    name: str
    type: str
    durable: bool
    auto_delete: bool
    internal: bool
    arguments: dict[str, Any]
    policy: str | None = None


@dataclass(frozen=True)
class LiveQueue:
    name: str
    type: str
    durable: bool
    auto_delete: bool
    exclusive: bool
    arguments: dict[str, Any]
    # the statistics fields lag behind (see the module docstring); None means "not reported yet"
    messages: int | None = None
    consumers: int | None = None
    policy: str | None = None
    effective_policy_definition: dict[str, Any] | None = None


@dataclass(frozen=True)
class QueueStats:
    messages: int | None
    messages_ready: int | None
    messages_unacknowledged: int | None
    consumers: int | None


@dataclass(frozen=True)
class LiveBinding:
    source: str
    destination: str
    destination_type: str
    routing_key: str
    arguments: dict[str, Any]
    # the API's id of a binding among those with the same source and destination
    properties_key: str


@dataclass(frozen=True)
class LivePolicy:
    name: str
    pattern: str
    apply_to: str
    priority: int
    definition: dict[str, Any] = field(default_factory=dict)


def _segment(value: str) -> str:
    # every path segment is quoted whole: the default vhost "/" must travel as %2F
    return quote(value, safe="")


class BrokerApi:
    """Sync client for one RabbitMQ management API; credentials come from the URL's userinfo."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(url)
        self.masked_url = mask_url(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        # the password lives only in the auth object, never in a URL that could end up in a message
        base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        auth = None
        if parts.username is not None:
            auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))
        self._client = httpx.Client(base_url=base, auth=auth, timeout=timeout)

    def __repr__(self) -> str:
        return f"BrokerApi({self.masked_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> BrokerApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        try:
            response = self._client.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise ServiceUnavailableError(SERVICE, self.masked_url, reason, fix=FIX) from None
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise BrokerApiError(method, path, response.status_code, response.text)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise BrokerApiError(
                method, path, response.status_code, "not JSON: " + response.text
            ) from None

    # overview

    def overview(self) -> Overview:
        data = self._request("GET", "/overview")
        return Overview(
            rabbitmq_version=str(data.get("rabbitmq_version", "")),
            management_version=str(data.get("management_version", "")),
            cluster_name=str(data.get("cluster_name", "")),
        )

    def rabbitmq_version(self) -> str:
        return self.overview().rabbitmq_version

    # vhosts and permissions

    def list_vhosts(self) -> list[str]:
        return [str(v["name"]) for v in self._request("GET", "/vhosts")]

    def vhost_exists(self, vhost: str) -> bool:
        return self._request("GET", f"/vhosts/{_segment(vhost)}", missing_ok=True) is not None

    def put_vhost(self, vhost: str, description: str = "") -> None:
        self._request("PUT", f"/vhosts/{_segment(vhost)}", json={"description": description})

    def delete_vhost(self, vhost: str, *, missing_ok: bool = False) -> None:
        self._request("DELETE", f"/vhosts/{_segment(vhost)}", missing_ok=missing_ok)

    def put_permissions(
        self, vhost: str, user: str, configure: str = ".*", write: str = ".*", read: str = ".*"
    ) -> None:
        body = {"configure": configure, "write": write, "read": read}
        self._request("PUT", f"/permissions/{_segment(vhost)}/{_segment(user)}", json=body)

    # exchanges

    def list_exchanges(self, vhost: str) -> list[LiveExchange]:
        return [_exchange(x) for x in self._request("GET", f"/exchanges/{_segment(vhost)}")]

    def get_exchange(self, vhost: str, name: str) -> LiveExchange | None:
        data = self._request(
            "GET", f"/exchanges/{_segment(vhost)}/{_segment(name)}", missing_ok=True
        )
        return None if data is None else _exchange(data)

    def put_exchange(
        self,
        vhost: str,
        name: str,
        exchange_type: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        body = {
            "type": exchange_type,
            "durable": durable,
            "auto_delete": auto_delete,
            "internal": internal,
            "arguments": arguments or {},
        }
        self._request("PUT", f"/exchanges/{_segment(vhost)}/{_segment(name)}", json=body)

    def delete_exchange(self, vhost: str, name: str, *, if_unused: bool = True) -> None:
        params = {"if-unused": "true"} if if_unused else None
        self._request("DELETE", f"/exchanges/{_segment(vhost)}/{_segment(name)}", params=params)

    def publish(
        self,
        vhost: str,
        exchange: str,
        routing_key: str,
        payload: str,
        properties: dict[str, Any] | None = None,
    ) -> bool:
        """Publish one message; True when the broker routed it (an alternate exchange counts)."""
        body = {
            "properties": properties or {},
            "routing_key": routing_key,
            "payload": payload,
            "payload_encoding": "string",
        }
        name = _segment(exchange or "amq.default")
        data = self._request("POST", f"/exchanges/{_segment(vhost)}/{name}/publish", json=body)
        return bool(data.get("routed"))

    # queues

    def list_queues(self, vhost: str) -> list[LiveQueue]:
        return [_queue(q) for q in self._request("GET", f"/queues/{_segment(vhost)}")]

    def get_queue(self, vhost: str, name: str) -> LiveQueue | None:
        data = self._request("GET", f"/queues/{_segment(vhost)}/{_segment(name)}", missing_ok=True)
        return None if data is None else _queue(data)

    def put_queue(
        self,
        vhost: str,
        name: str,
        *,
        arguments: dict[str, Any],
        durable: bool = True,
        auto_delete: bool = False,
    ) -> None:
        body = {"durable": durable, "auto_delete": auto_delete, "arguments": arguments}
        self._request("PUT", f"/queues/{_segment(vhost)}/{_segment(name)}", json=body)

    def delete_queue(
        self, vhost: str, name: str, *, if_empty: bool = True, if_unused: bool = True
    ) -> None:
        """Delete a queue; by default only when empty and unused, since deleting loses messages.

        Quorum queues refuse both conditions (400 on RabbitMQ 3.10): check their stats and
        pass ``if_empty=False, if_unused=False``.
        """
        params = {}
        if if_empty:
            params["if-empty"] = "true"
        if if_unused:
            params["if-unused"] = "true"
        self._request("DELETE", f"/queues/{_segment(vhost)}/{_segment(name)}", params=params)

    def queue_stats(self, vhost: str, name: str) -> QueueStats | None:
        data = self._request("GET", f"/queues/{_segment(vhost)}/{_segment(name)}", missing_ok=True)
        if data is None:
            return None
        return QueueStats(
            messages=_int_or_none(data.get("messages")),
            messages_ready=_int_or_none(data.get("messages_ready")),
            messages_unacknowledged=_int_or_none(data.get("messages_unacknowledged")),
            consumers=_int_or_none(data.get("consumers")),
        )

    def get_messages(self, vhost: str, queue: str, count: int = 1) -> list[dict[str, Any]]:
        """Peek at messages: they are requeued (and marked redelivered, which counts towards a
        quorum queue's delivery limit)."""
        body = {"count": count, "ackmode": "ack_requeue_true", "encoding": "auto"}
        path = f"/queues/{_segment(vhost)}/{_segment(queue)}/get"
        return list(self._request("POST", path, json=body))

    # bindings

    def list_bindings(self, vhost: str) -> list[LiveBinding]:
        return [_binding(b) for b in self._request("GET", f"/bindings/{_segment(vhost)}")]

    def put_binding(
        self,
        vhost: str,
        source: str,
        destination: str,
        routing_key: str,
        *,
        destination_type: str = "queue",
        arguments: dict[str, Any] | None = None,
    ) -> None:
        kind = "q" if destination_type == "queue" else "e"
        path = f"/bindings/{_segment(vhost)}/e/{_segment(source)}/{kind}/{_segment(destination)}"
        self._request("POST", path, json={"routing_key": routing_key, "arguments": arguments or {}})

    def delete_binding(self, vhost: str, binding: LiveBinding) -> None:
        kind = "q" if binding.destination_type == "queue" else "e"
        path = (
            f"/bindings/{_segment(vhost)}/e/{_segment(binding.source)}/{kind}/"
            f"{_segment(binding.destination)}/{_segment(binding.properties_key)}"
        )
        self._request("DELETE", path)

    # policies

    def list_policies(self, vhost: str) -> list[LivePolicy]:
        return [_policy(p) for p in self._request("GET", f"/policies/{_segment(vhost)}")]

    def get_policy(self, vhost: str, name: str) -> LivePolicy | None:
        data = self._request(
            "GET", f"/policies/{_segment(vhost)}/{_segment(name)}", missing_ok=True
        )
        return None if data is None else _policy(data)

    def put_policy(
        self,
        vhost: str,
        name: str,
        *,
        pattern: str,
        definition: dict[str, Any],
        apply_to: str,
        priority: int,
    ) -> None:
        body = {
            "pattern": pattern,
            "definition": definition,
            "apply-to": apply_to,
            "priority": priority,
        }
        self._request("PUT", f"/policies/{_segment(vhost)}/{_segment(name)}", json=body)

    def delete_policy(self, vhost: str, name: str, *, missing_ok: bool = False) -> None:
        self._request(
            "DELETE", f"/policies/{_segment(vhost)}/{_segment(name)}", missing_ok=missing_ok
        )

    # definitions

    def import_definitions(self, definitions: dict[str, Any]) -> None:
        """Import definitions (additive: objects not in them are left alone)."""
        self._request("POST", "/definitions", json=definitions)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _exchange(data: dict[str, Any]) -> LiveExchange:
    return LiveExchange(
        name=str(data["name"]),
        type=str(data["type"]),
        durable=bool(data.get("durable", True)),
        auto_delete=bool(data.get("auto_delete", False)),
        internal=bool(data.get("internal", False)),
        arguments=dict(data.get("arguments") or {}),
        policy=data.get("policy") or None,
    )


def _queue(data: dict[str, Any]) -> LiveQueue:
    arguments = dict(data.get("arguments") or {})
    return LiveQueue(
        name=str(data["name"]),
        # a queue declared without x-queue-type is classic; "type" is reported either way
        type=str(data.get("type") or arguments.get("x-queue-type") or "classic"),
        durable=bool(data.get("durable", True)),
        auto_delete=bool(data.get("auto_delete", False)),
        exclusive=bool(data.get("exclusive", False)),
        arguments=arguments,
        messages=_int_or_none(data.get("messages")),
        consumers=_int_or_none(data.get("consumers")),
        policy=data.get("policy") or None,
        effective_policy_definition=data.get("effective_policy_definition"),
    )


def _binding(data: dict[str, Any]) -> LiveBinding:
    return LiveBinding(
        source=str(data["source"]),
        destination=str(data["destination"]),
        destination_type=str(data["destination_type"]),
        routing_key=str(data.get("routing_key", "")),
        arguments=dict(data.get("arguments") or {}),
        properties_key=str(data.get("properties_key", "~")),
    )


def _policy(data: dict[str, Any]) -> LivePolicy:
    return LivePolicy(
        name=str(data["name"]),
        pattern=str(data["pattern"]),
        apply_to=str(data.get("apply-to", "all")),
        priority=int(data.get("priority", 0)),
        definition=dict(data.get("definition") or {}),
    )
