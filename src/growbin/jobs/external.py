"""External calls on the API queue: nearby recycling points (Kakao Local) and OAuth checks.

Provider errors come already sorted (see :mod:`growbin.scan.providers.errors`): a 5xx, a 429 or
a timeout is transient and retried by the task base; a 4xx, an invalid token or bad arguments
are fatal and dead-lettered at once.

Access tokens: Celery copies a task's arguments into the broker message, the result backend
(``result_extended``), its failure log and our dead letters. So callers should not pass the
token itself: :func:`submit_oauth_verify` keeps it in the key-value store for a few minutes and
sends only a reference. A raw ``access_token`` still works, and is redacted from dead letters,
but the broker message and the result backend keep it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from growbin.errors import FatalTaskError
from growbin.runtime.kv import KeyValue
from growbin.runtime.task_base import GrowbinTask, settings_of
from growbin.scan.context import scan_context
from growbin.scan.providers.kakao_map import KakaoLocalClient, OfflineBinFinder, PlaceSearch
from growbin.scan.providers.oauth import OAuthVerifier
from growbin.settings import Settings

MAP_SEARCH = "growbin.jobs.map_search"
OAUTH_VERIFY = "growbin.jobs.oauth_verify"
DEFAULT_MAP_QUERY = "재활용 수거함"
TOKEN_REF_PREFIX = "growbin:oauth:token:"  # noqa: S105 - a key prefix, not a secret
# A reference only has to outlive its message, and q.api drops messages after 300 s.
TOKEN_REF_TTL = 300.0
REDACTED = "[redacted]"


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


class OAuthVerifyTask(GrowbinTask):
    """Dead letters are archived in PostgreSQL with their arguments: a raw token must not be."""

    def dead_letter(self, exc: BaseException, **fields: Any) -> None:
        args, kwargs = _redact(fields.pop("args", ()), fields.pop("kwargs", {}))
        super().dead_letter(exc, args=args, kwargs=kwargs, **fields)


def register(app: Celery) -> None:
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
