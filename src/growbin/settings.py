"""Settings: one object, built once from the environment (prefix GROWBIN_) and passed in."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from growbin.api_config import ApiConfig
from growbin.errors import ConfigError
from growbin.journal.config import JournalConfig
from growbin.ops.logging_config import LoggingConfig
from growbin.ops.metrics_config import MetricsConfig
from growbin.scheduler.config import BeatConfig

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_RABBITMQ_API_URL = "http://guest:guest@127.0.0.1:15672/api"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything configurable. Build with :func:`load_settings`; never at import time."""

    model_config = SettingsConfigDict(env_prefix="GROWBIN_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    broker_url: SecretStr = SecretStr(DEFAULT_BROKER_URL)
    rabbitmq_api_url: SecretStr = SecretStr(DEFAULT_RABBITMQ_API_URL)
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    result_backend_url: SecretStr | None = None
    database_url: SecretStr = SecretStr("postgresql+psycopg://postgres@127.0.0.1:5432/growbin")
    topology: str = Field(
        default="production",
        description="A preset name (production, slo, pipeline) or a path to a topology YAML file",
    )
    task_modules: str = Field(
        default="",
        description="Comma-separated modules with a register(app) function, for your own tasks",
    )
    providers: Literal["offline", "openai"] = Field(
        default="offline",
        description="offline: local, honest heuristics; openai: an OpenAI-compatible HTTP API",
    )
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr = SecretStr("")
    openai_vision_model: str = "gpt-5"
    openai_text_model: str = "gpt-4o-mini"
    openai_timeout: float = 30.0
    openai_response_format: Literal["json_schema", "json_object"] = Field(
        default="json_schema",
        description="json_schema: structured output (OpenAI, Ollama, vLLM, LM Studio); "
        "json_object: JSON mode for servers without schema support, validated by growbin",
    )
    kakao_base_url: str = "https://dapi.kakao.com"
    kakao_rest_api_key: SecretStr = SecretStr("")
    oauth_userinfo_url: str = "https://kapi.kakao.com/v2/user/me"
    image_dir: str = ".growbin/images"
    scan_cache_ttl: int = Field(default=3600, ge=0, description="seconds a classification is kept")
    api_secret: SecretStr = SecretStr("")
    guard_prefix: str = Field(default="growbin", description="Redis key prefix of the guards")
    guard_max_defer: float = Field(
        default=900.0, gt=0, description="seconds a throttled task may be deferred in all"
    )
    guard_idempotency_ttl: float = Field(default=3600.0, gt=0)
    guard_lock_ttl: float = Field(default=120.0, gt=0)
    # Capabilities with many knobs keep them in their own settings class (its own GROWBIN_*_
    # prefix), read here once with the rest and passed in as settings.journal / settings.beat.
    journal: JournalConfig = Field(default_factory=lambda: JournalConfig.load())
    beat: BeatConfig = Field(default_factory=lambda: BeatConfig.load())
    api: ApiConfig = Field(default_factory=lambda: ApiConfig.load())
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log: LoggingConfig = Field(default_factory=LoggingConfig)
    worker_stall_after: float | None = Field(
        default=None,
        gt=0,
        description="seconds a worker may hold reserved tasks without finishing or starting "
        "one before it counts as stalled (default: its profile's time_limit + 60, else 660)",
    )
    worker_progress_dir: str | None = Field(
        default=None,
        description="directory of the workers' progress files, one per worker "
        "(default: <system temp>/growbin-workers)",
    )
    broker_connect_timeout: float = 5.0
    publish_confirm_timeout: float = 5.0
    skip_topology_check: bool = Field(
        default=False,
        description="development only: start workers, beat and the API without comparing the "
        "live vhost with the topology (refused in staging and production)",
    )

    def result_backend(self) -> str:
        """The Celery result backend: Redis unless set explicitly."""
        url = self.result_backend_url or self.redis_url
        return url.get_secret_value()

    def masked(self) -> dict[str, Any]:
        """Every setting, with passwords in URLs and secret values masked, for display."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                out[name] = mask_url(raw) if "://" in raw else ("********" if raw else "")
            elif isinstance(value, StrEnum):
                out[name] = value.value
            elif isinstance(value, BaseSettings):
                out[name] = _mask_values(value.model_dump(mode="json"))
            else:
                out[name] = _mask_values(value)
        return out


def _mask_values(value: Any) -> Any:
    """Plain (non-secret) settings may hold URLs with credentials too: mask every string."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {k: _mask_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask_values(v) for v in value)
    return value


# query parameters whose value is a credential (matched as a substring of the lower-cased name)
_SECRET_PARAMS = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "signature")
_MASK = "****"
# a URL inside free text: a scheme, then everything up to white space or a closing quote/bracket
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")


def mask_url(url: str) -> str:
    """Hide every credential in a URL, or in a ``;``-separated list of URLs (kombu failover).

    The password of the userinfo (``amqp://user:secret@host`` -> ``amqp://user:****@host``,
    also when the password holds an unescaped ``@``), and the value of each query parameter
    whose name says it is a credential (``?password=``, ``?api_key=``, ``?access_token=``).
    Hosts are left exactly as written, so multi-host lists (``db1:5432,db2:5432``) and IPv6
    literals survive. This is the one masking function: displays, logs and errors use it.
    """
    return ";".join(_mask_one(part) for part in url.split(";"))


def mask_text(text: str) -> str:
    """``text`` with :func:`mask_url` applied to every URL in it (error messages, log lines)."""
    return _URL_IN_TEXT.sub(lambda m: _mask_one(m.group(0)), text)


def _mask_one(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # the authority ends at the first / ? or # after the last @ (a password may hold / or ?)
    at = rest.rfind("@", 0, _authority_end(rest))
    if at >= 0:
        userinfo, rest = rest[:at], rest[at:]
        user, colon, _ = userinfo.partition(":")
        rest = (f"{user}:{_MASK}" if colon else user) + rest
    head, qmark, query = rest.partition("?")
    if not qmark:
        return f"{scheme}://{rest}"
    query, hash_, fragment = query.partition("#")
    return f"{scheme}://{head}?{_mask_query(query)}{hash_}{fragment}"


def _authority_end(rest: str) -> int:
    # the last @ before the path is the userinfo's end; without any @ there is no userinfo
    last_at = rest.rfind("@")
    if last_at < 0:
        return 0
    ends = [i for i in (rest.find(c, last_at) for c in "/?#") if i >= 0]
    return min(ends) if ends else len(rest)


def _mask_query(query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if eq and value and any(word in name.lower() for word in _SECRET_PARAMS):
            value = _MASK
        pairs.append(f"{name}{eq}{value}")
    return "&".join(pairs)


def _is_loopback(host: str | None) -> bool:
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_secure(settings: Settings) -> None:
    """Outside development, refuse insecure defaults, naming the variable and the fix."""
    if settings.env is Environment.DEVELOPMENT or settings.env is Environment.TEST:
        return
    problems: list[str] = []
    for var, secret in (
        ("GROWBIN_BROKER_URL", settings.broker_url),
        ("GROWBIN_RABBITMQ_API_URL", settings.rabbitmq_api_url),
    ):
        parts = urlsplit(secret.get_secret_value())
        if (
            parts.username == "guest"
            and parts.password == "guest"  # noqa: S105 - detecting the default, not using it
            and not _is_loopback(parts.hostname)
        ):
            problems.append(
                f"{var} uses guest/guest on the non-loopback host {parts.hostname}: "
                "create a dedicated RabbitMQ user and put its credentials in the URL"
            )
        if not parts.password:
            problems.append(f"{var} has no password: set one in the URL")
    if not settings.api_secret.get_secret_value():
        problems.append(
            "GROWBIN_API_SECRET is empty: set it to a long random value "
            "(for example `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    if settings.providers == "openai" and not settings.openai_api_key.get_secret_value():
        problems.append("GROWBIN_OPENAI_API_KEY is empty while GROWBIN_PROVIDERS=openai: set it")
    if settings.skip_topology_check:
        problems.append(
            "GROWBIN_SKIP_TOPOLOGY_CHECK is set: workers, beat and the API would consume from a "
            "vhost nobody checked; unset it and run `growbin topology apply` instead"
        )
    if problems:
        raise ConfigError(
            f"refusing insecure settings for GROWBIN_ENV={settings.env.value}:\n  - "
            + "\n  - ".join(problems)
        )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment (and overrides), checked for safety."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            var = "GROWBIN_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{var}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid settings:\n  - " + "\n  - ".join(lines)) from None
    check_secure(settings)
    return settings
