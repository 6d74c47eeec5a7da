"""The queue overview for operators: depth, consumers and rates from the management API.

Rates come from the management plugin's ``message_stats`` (per second, averaged over its
sampling interval); they are absent until a queue has seen traffic, and so are null here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from growbin.topology.broker_api import BrokerApi
from growbin.topology.model import Topology

COLUMNS = ",".join(
    (
        "name",
        "type",
        "messages",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
        "policy",
        "message_stats.publish_details.rate",
        "message_stats.deliver_get_details.rate",
        "message_stats.ack_details.rate",
    )
)


class QueueStatsApi(BrokerApi):
    """The management API client, plus the raw queue listing with message rates."""

    def queue_listing(self, vhost: str) -> list[dict[str, Any]]:
        path = f"/queues/{quote(vhost, safe='')}"
        data = self._request("GET", path, params={"columns": COLUMNS}, missing_ok=True)
        return list(data or [])


def _rate(stats: dict[str, Any], key: str) -> float | None:
    value = (stats.get(key) or {}).get("rate")
    return float(value) if isinstance(value, int | float) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def overview(topology: Topology, api_url: str, *, timeout: float = 5.0) -> list[dict[str, Any]]:
    """One entry per queue of the topology, in the topology's order."""
    api = QueueStatsApi(api_url, timeout=timeout)
    try:
        live = {str(q["name"]): q for q in api.queue_listing(topology.vhost)}
    finally:
        api.close()
    rows: list[dict[str, Any]] = []
    for name, queue in topology.queues.items():
        found = live.get(name)
        row: dict[str, Any] = {
            "name": name,
            "role": queue.role.value,
            "alert_depth": queue.alert_depth,
            "exists": found is not None,
        }
        if found is not None:
            stats = found.get("message_stats") or {}
            messages = _int(found.get("messages"))
            row |= {
                "type": found.get("type"),
                "messages": messages,
                "messages_ready": _int(found.get("messages_ready")),
                "messages_unacknowledged": _int(found.get("messages_unacknowledged")),
                "consumers": _int(found.get("consumers")),
                "policy": found.get("policy") or None,
                "publish_rate": _rate(stats, "publish_details"),
                "deliver_rate": _rate(stats, "deliver_get_details"),
                "ack_rate": _rate(stats, "ack_details"),
                "over_alert_depth": bool(
                    queue.alert_depth is not None
                    and messages is not None
                    and messages >= queue.alert_depth
                ),
            }
        rows.append(row)
    return rows
