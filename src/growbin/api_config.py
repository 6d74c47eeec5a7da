"""The API's settings, read from GROWBIN_API_* and carried by the settings object as ``api``.

Kept beside :mod:`growbin.settings` (not in :mod:`growbin.api`) so that the settings, which
every layer imports, never import the HTTP API. A ``GROWBIN_API_*`` variable that names no
setting is refused, naming the closest one: a misspelt limit must not be silently ignored.
``GROWBIN_API_SECRET`` is the one exception; it belongs to the top-level settings
(``settings.api_secret``) because the CLI's key commands use it too.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from growbin.errors import ConfigError

PREFIX = "GROWBIN_API_"
# read by the top-level settings, not by ApiConfig (see the module docstring)
OWNED_ELSEWHERE = frozenset({"GROWBIN_API_SECRET"})
# room for the multipart envelope and a hint around the largest image intake accepts
MULTIPART_OVERHEAD = 256 * 1024
# growbin.scan.images.MAX_BYTES (10 MiB); not imported, the settings stay below the domain
# (tests/unit/api/test_app.py checks that the two agree)
MAX_IMAGE_BYTES = 10 * 1024 * 1024

# A list from the environment: comma-separated (a.example,b.example) or a JSON array
Names = Annotated[tuple[str, ...], NoDecode]


class ApiConfig(BaseSettings):
    """The HTTP API's knobs. Build with :meth:`load` (or as ``settings.api``)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", frozen=True)

    max_body_bytes: int = Field(
        default=MAX_IMAGE_BYTES + MULTIPART_OVERHEAD,
        ge=1024,
        description="request bodies above this are refused with 413 before they are read",
    )
    retry_after: int = Field(default=5, ge=1, description="Retry-After seconds on a 503")
    publish_connect_timeout: float = Field(
        default=2.0,
        gt=0,
        description="seconds to connect to RabbitMQ (and to reach Redis) before refusing",
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
    fetch_max_redirects: int = Field(
        default=3, ge=0, le=10, description="redirects an image URL fetch follows"
    )
    fetch_allowed_hosts: Names = Field(
        default=(), description="if set, only these host names may be fetched"
    )
    fetch_trusted_networks: Names = Field(
        default=(),
        description="CIDRs exempt from the private-address refusal (an internal image store); "
        "cloud metadata addresses stay refused",
    )
    cors_origins: Names = Field(default=(), description="origins allowed by CORS; none if empty")
    sse_poll_interval: float = Field(
        default=0.2, gt=0, description="seconds between a scan's checks in its event stream"
    )
    sse_heartbeat: float = Field(
        default=15.0, gt=0, description="seconds between keep-alive comments in an event stream"
    )
    sse_max_seconds: float = Field(
        default=900.0, gt=0, description="an event stream is closed after this many seconds"
    )
    readiness_timeout: float = Field(
        default=3.0, gt=0, description="seconds each /readyz check may take"
    )
    body_timeout: float = Field(
        default=60.0,
        gt=0,
        description="seconds a request body may take to arrive in full; 408 after that",
    )
    quotas: bool = Field(
        default=True, description="per-key quotas (rates, tasks in flight, streams) in Redis"
    )
    quota_rate: str = Field(
        default="300/m", description="requests per key over all routes: N/s, N/m or N/h"
    )
    quota_burst: int = Field(
        default=30, ge=1, description="requests a key may send back to back before the rate"
    )
    quota_family_rates: str = Field(
        default="submit=60/m,events=30/m",
        description="rates per route family (submit, read, events, admin) on top of "
        "quota_rate, e.g. submit=60/m,events=30/m",
    )
    quota_in_flight: int = Field(
        default=30, ge=1, description="scans and tasks a key may have queued or running"
    )
    quota_delayed_in_flight: int = Field(
        default=2, ge=0, description="example tasks with a delay a key may have queued or running"
    )
    quota_streams: int = Field(default=5, ge=0, description="open event streams per key")
    quota_in_flight_ttl: float = Field(
        default=3600.0,
        gt=0,
        description="seconds a submission counts as in flight at most (if its end goes unseen)",
    )

    @field_validator("fetch_allowed_hosts", "fetch_trusted_networks", "cors_origins", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return value

    @field_validator("quota_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value.strip()

    @field_validator("quota_family_rates")
    @classmethod
    def _family_rates(cls, value: str) -> str:
        parse_family_rates(value)
        return value.strip()

    def family_rates(self) -> dict[str, tuple[int, float]]:
        return parse_family_rates(self.quota_family_rates)

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
    def variables(cls) -> dict[str, str]:
        """Each variable and the field it sets: GROWBIN_API_MAX_BODY_BYTES -> max_body_bytes."""
        return {f"{PREFIX}{name.upper()}": name for name in cls.model_fields}

    @classmethod
    def from_settings(cls, settings: CarriesApi, **overrides: Any) -> ApiConfig:
        """``settings.api``, with ``overrides`` validated like values from the environment."""
        if not overrides:
            return settings.api
        return cls(**{**settings.api.model_dump(), **overrides})

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ApiConfig:
        """From GROWBIN_API_* (and ``overrides``); a bad value or unknown name is a ConfigError."""
        unknown = unknown_variables(os.environ if environ is None else environ)
        if unknown:
            raise ConfigError("unknown API settings:\n  - " + "\n  - ".join(unknown))
        try:
            return cls(**overrides)
        except ValidationError as exc:
            lines = [
                f"{PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} "
                f"(got {e.get('input')!r})"
                for e in exc.errors()
            ]
            raise ConfigError("invalid API settings:\n  - " + "\n  - ".join(lines)) from None


ROUTE_FAMILIES = ("submit", "read", "events", "admin")
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0}  # fmt: skip


def parse_rate(text: str) -> tuple[int, float]:
    """``"300/m"`` -> (300, 60.0): a count per period (s, m or h). ValueError names the fix."""
    count, slash, unit = text.strip().partition("/")
    try:
        number = int(count)
    except ValueError:
        number = 0
    per = _UNITS.get(unit.strip().lower()) if slash else None
    if number < 1 or number > 1_000_000 or per is None:
        raise ValueError(
            f"{text!r} is not a rate: write a whole number of requests per s, m or h, "
            "e.g. 300/m or 5/s"
        )
    return number, per


def parse_family_rates(text: str | dict[str, str]) -> dict[str, tuple[int, float]]:
    """``"submit=60/m,events=30/m"`` (or that as a dict) -> {family: (count, per)}."""
    pairs = (
        list(text.items())
        if isinstance(text, dict)
        else [part.partition("=")[::2] for part in text.split(",") if part.strip()]
    )
    rates: dict[str, tuple[int, float]] = {}
    for family, rate in pairs:
        name = family.strip().lower()
        if name not in ROUTE_FAMILIES:
            raise ValueError(
                f"{family!r} is not a route family: use {', '.join(ROUTE_FAMILIES)} "
                "(e.g. submit=60/m)"
            )
        rates[name] = parse_rate(rate)
    return rates


class CarriesApi(Protocol):
    """The settings object (typed structurally: growbin.settings imports this module)."""

    @property
    def api(self) -> ApiConfig: ...


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A line for each GROWBIN_API_* variable that no setting reads, with the likely name."""
    known = set(ApiConfig.variables()) | OWNED_ELSEWHERE
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known:
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see the README's settings table"
        lines.append(f"{name} is not a setting ({hint}); rename or remove it")
    return lines
