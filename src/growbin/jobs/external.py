"""External calls on the API queue: nearby recycling points (Kakao Local), OAuth checks and
any other HTTP API (``external_call``, seed 000's ``external.call``).

Provider errors come already sorted (see :mod:`growbin.scan.providers.errors`): a 5xx, a 429 or
a timeout is transient and retried by the task base; a 4xx, an invalid token or bad arguments
are fatal and dead-lettered at once.

Access tokens: Celery copies a task's arguments into the broker message, the result backend
(``result_extended``), its failure log and our dead letters. So callers should not pass the
token itself: :func:`submit_oauth_verify` keeps it in the key-value store for a few minutes and
sends only a reference. A raw ``access_token`` still works, and is redacted from dead letters,
but the broker message and the result backend keep it.

Logs: Celery writes a task's arguments when it is received and when it fails, and its return
value when it succeeds, at INFO. For ``oauth_verify`` those are a token and a person's e-mail
address: :class:`RedactOAuthLogs`, on Celery's loggers, replaces them before any handler sees
the record (at every level, text and JSON alike).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from celery import Celery
from celery.result import AsyncResult

from growbin.errors import FatalTaskError
from growbin.runtime.kv import KeyValue
from growbin.runtime.task_base import GrowbinTask, settings_of
from growbin.scan.context import scan_context
from growbin.scan.providers.http import send
from growbin.scan.providers.kakao_map import KakaoLocalClient, OfflineBinFinder, PlaceSearch
from growbin.scan.providers.oauth import OAuthVerifier
from growbin.settings import Settings

MAP_SEARCH = "growbin.jobs.map_search"
EXTERNAL_CALL = "growbin.jobs.external_call"
CALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
CALL_MAX_TIMEOUT = 30.0  # below every preset's hard time limit on the external lane
CALL_MAX_BODY = 64 * 1024  # characters of the answer kept in the result
OAUTH_VERIFY = "growbin.jobs.oauth_verify"
DEFAULT_MAP_QUERY = "재활용 수거함"
TOKEN_REF_PREFIX = "growbin:oauth:token:"  # noqa: S105 - a key prefix, not a secret
# A reference only has to outlive its message, and q.api drops messages after 300 s.
TOKEN_REF_TTL = 300.0
REDACTED = "[redacted]"
# the loggers through which Celery writes a task's arguments and return value
CELERY_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.worker.request")
_PERSONAL = ("args", "kwargs", "return_value")


class RedactOAuthLogs(logging.Filter):
    """Redacts oauth_verify's arguments (a token) and return value (an e-mail address)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping) and record.args.get("name") == OAUTH_VERIFY:
            record.args = _redacted(record.args)
        data = getattr(record, "data", None)
        if isinstance(data, Mapping) and data.get("name") == OAUTH_VERIFY:
            record.data = _redacted(data)
        return True


def _redacted(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: REDACTED if k in _PERSONAL else v for k, v in fields.items()}


def install_log_redaction() -> None:
    """Put :class:`RedactOAuthLogs` on Celery's task loggers, once per process."""
    for name in CELERY_TASK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactOAuthLogs) for f in logger.filters):
            logger.addFilter(RedactOAuthLogs())


def search_nearby(
    settings: Settings, *, x: float, y: float, radius: int, query: str
) -> PlaceSearch:
    """Kakao Local when a REST API key is set, else the packaged fixture (``offline=True``)."""
    if settings.kakao_rest_api_key.get_secret_value():
        with KakaoLocalClient(
            settings.kakao_rest_api_key, base_url=settings.kakao_base_url
        ) as client:
            return client.nearby(x=x, y=y, radius=radius, query=query)
    return OfflineBinFinder().nearby(x=x, y=y, radius=radius, query=query)


def stash_token(kv: KeyValue, access_token: str, ttl: float = TOKEN_REF_TTL) -> str:
    """Keep ``access_token`` in the key-value store for ``ttl`` s; return its reference."""
    ref = TOKEN_REF_PREFIX + secrets.token_urlsafe(24)
    kv.set(ref, access_token, ttl=ttl)
    return ref


def submit_oauth_verify(app: Celery, kv: KeyValue, access_token: str) -> AsyncResult:
    """Queue a token check that carries a reference, never the token (see the module doc).

    ``kv`` must be the store the workers read: Redis in production (the in-memory one only
    works with workers in the same process, as in the embedded demo).
    """
    ref = stash_token(kv, access_token)
    return app.send_task(OAUTH_VERIFY, kwargs={"token_ref": ref}, kwargsrepr="{'token_ref': ...}")


def resolve_token(
    kv: Callable[[], KeyValue], access_token: str | None, token_ref: str | None
) -> str:
    """The token to check. ``kv`` is called only for a reference (a raw token needs no store)."""
    if (access_token is None) == (token_ref is None):
        raise FatalTaskError(
            "oauth_verify needs exactly one of token_ref (from stash_token, preferred) and "
            "access_token"
        )
    if access_token is not None:
        return access_token
    assert token_ref is not None
    # Only references: otherwise the task would send any key's value to the provider.
    if not token_ref.startswith(TOKEN_REF_PREFIX):
        raise FatalTaskError(
            f"token_ref does not start with {TOKEN_REF_PREFIX!r}: pass what stash_token returned"
        )
    token = kv().get(token_ref)
    if token is None:
        raise FatalTaskError(
            f"the token reference is unknown or expired (references live {TOKEN_REF_TTL:g} s): "
            "stash the token again and resubmit"
        )
    return token


def _redact(args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    args = list(args or ())
    kwargs = dict(kwargs or {})
    if args and args[0] is not None:
        args[0] = REDACTED
    if kwargs.get("access_token") is not None:
        kwargs["access_token"] = REDACTED
    return args, kwargs


def call_external(
    url: str,
    *,
    method: str = "GET",
    json: Any = None,
    timeout: float = 10.0,
    idempotency_key: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """One HTTP call; its answer as {status, url, json | text}. Errors sorted as a provider's.

    5xx, 429, timeouts and refused connections are transient (retried); another 4xx, a bad
    URL or bad arguments are fatal. No headers are taken from the caller: a task's arguments
    are copied into the broker, the result backend and dead letters, so credentials do not
    belong there. Delivery is at least once, so a call may repeat: make it idempotent, or pass
    ``idempotency_key`` (sent as ``Idempotency-Key``) to an API that honours one.
    """
    verb = str(method).upper()
    if verb not in CALL_METHODS:
        raise FatalTaskError(f"external_call: method {method!r}: use one of {CALL_METHODS}")
    parsed = httpx.URL(str(url))
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FatalTaskError(f"external_call: url {url!r}: give an absolute http(s) URL")
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise FatalTaskError(f"external_call: timeout={timeout!r} is not a number") from None
    if not 0 < seconds <= CALL_MAX_TIMEOUT:
        raise FatalTaskError(
            f"external_call: timeout={timeout!r}: give 0 < timeout <= {CALL_MAX_TIMEOUT:g} s"
        )
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with httpx.Client(timeout=seconds, transport=transport, follow_redirects=False) as client:
        response = send(client, verb, str(parsed), provider=parsed.host, json=json, headers=headers)
    answer: dict[str, Any] = {"status": response.status_code, "url": str(response.request.url)}
    if "json" in response.headers.get("content-type", ""):
        try:
            answer["json"] = response.json()
            return answer
        except ValueError:
            pass
    answer["text"] = response.text[:CALL_MAX_BODY]
    return answer


class OAuthVerifyTask(GrowbinTask):
    """Dead letters are archived in PostgreSQL with their arguments: a raw token must not be."""

    def dead_letter(self, exc: BaseException, **fields: Any) -> None:
        args, kwargs = _redact(fields.pop("args", ()), fields.pop("kwargs", {}))
        super().dead_letter(exc, args=args, kwargs=kwargs, **fields)


def register(app: Celery) -> None:
    install_log_redaction()

    @app.task(name=MAP_SEARCH, shared=False)  # type: ignore[untyped-decorator]
    def map_search(
        x: float, y: float, radius: int = 2000, query: str = DEFAULT_MAP_QUERY
    ) -> dict[str, Any]:
        """Recycling points within ``radius`` m of x (longitude), y (latitude), nearest first.

        ``offline`` says whether the places came from the packaged fixture (no Kakao key set)
        rather than from Kakao.
        """
        try:
            found = search_nearby(
                settings_of(app), x=float(x), y=float(y), radius=int(radius), query=str(query)
            )
        except (TypeError, ValueError) as exc:
            # Bad coordinates stay bad: say so once instead of retrying.
            raise FatalTaskError(f"map_search: {exc}") from None
        return {
            "provider": found.provider,
            "offline": found.offline,
            "total_count": found.meta.total_count,
            "places": [place.model_dump() for place in found.documents],
        }

    @app.task(name=EXTERNAL_CALL, shared=False)  # type: ignore[untyped-decorator]
    def external_call(
        url: str,
        method: str = "GET",
        json: Any = None,
        timeout: float = 10.0,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Call another HTTP API from the isolated external lane (see :func:`call_external`)."""
        return call_external(
            url, method=method, json=json, timeout=timeout, idempotency_key=idempotency_key
        )

    @app.task(name=OAUTH_VERIFY, base=OAuthVerifyTask, shared=False)  # type: ignore[untyped-decorator]
    def oauth_verify(
        access_token: str | None = None, token_ref: str | None = None
    ) -> dict[str, Any]:
        """Who the token belongs to: {provider, subject, email} (email only when verified).

        An invalid or expired token is fatal (dead-lettered at once); a provider outage is
        retried. Prefer ``token_ref`` (see :func:`submit_oauth_verify`) to ``access_token``.
        """
        token = resolve_token(lambda: scan_context(app).kv, access_token, token_ref)
        with OAuthVerifier(settings_of(app).oauth_userinfo_url) as verifier:
            user = verifier.verify(token)
        return user.model_dump()
