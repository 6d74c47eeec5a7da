"""The API's own knobs, with defaults, filled from the settings object.

``Settings`` does not have these fields yet; :meth:`ApiConfig.from_settings` picks up any
``api_<name>`` attribute it finds there, so the proposed ``GROWBIN_API_*`` variables take effect
as soon as they are added to ``Settings``, without a change here.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from growbin.scan.images import MAX_BYTES
from growbin.settings import Settings

# room for the multipart envelope and a hint around the largest image intake accepts
MULTIPART_OVERHEAD = 256 * 1024


class ApiConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(
        default=MAX_BYTES + MULTIPART_OVERHEAD,
        ge=1024,
        description="request bodies above this are refused with 413 before they are read",
    )
    retry_after: int = Field(default=5, ge=1, description="Retry-After seconds on a 503")
    publish_connect_timeout: float = Field(
        default=2.0, gt=0, description="seconds to connect to RabbitMQ before refusing"
    )
    publish_max_retries: int = Field(
        default=2, ge=0, description="publish retries (reconnects) before a 503"
    )
    publish_confirm_timeout: float = Field(
        default=5.0, gt=0, description="seconds to wait for the broker's confirm"
    )
    task_record_ttl: int = Field(
        default=86400, ge=60, description="how long /result knows the ids it issued (seconds)"
    )
    fetch_timeout: float = Field(default=10.0, gt=0, description="whole image URL fetch, seconds")
    fetch_max_redirects: int = Field(default=3, ge=0, le=10)
    fetch_allowed_hosts: tuple[str, ...] = Field(
        default=(), description="if set, only these host names may be fetched"
    )
    fetch_trusted_networks: tuple[str, ...] = Field(
        default=(),
        description="CIDRs exempt from the private-address refusal (an internal image store); "
        "cloud metadata addresses stay refused",
    )
    cors_origins: tuple[str, ...] = ()
    sse_poll_interval: float = Field(default=0.2, gt=0)
    sse_heartbeat: float = Field(default=15.0, gt=0)
    sse_max_seconds: float = Field(default=900.0, gt=0)
    readiness_timeout: float = Field(default=3.0, gt=0)

    @field_validator("fetch_trusted_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(
                    f"{cidr!r} is not a network: write CIDRs such as 10.1.2.0/24"
                ) from None
        return value

    @field_validator("fetch_allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(host.strip().lower().rstrip(".") for host in value if host.strip())

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ApiConfig:
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            value = getattr(settings, f"api_{name}", None)
            if value is not None:
                values[name] = value
        values.update(overrides)
        return cls(**values)


PROPOSED_VARIABLES = {f"GROWBIN_API_{name.upper()}": name for name in ApiConfig.model_fields}
