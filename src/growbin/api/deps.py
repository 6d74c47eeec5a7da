"""Dependencies: the runtime, who is calling (API key -> owner, scopes and quotas), metering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from growbin.api import keys
from growbin.api.problems import ApiError, unauthorized
from growbin.api.quotas import KeyQuotas, family_of
from growbin.api.runtime import ApiRuntime

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    bearerFormat="gb_<prefix>_<secret>",
    description="An API key from `growbin apikey create`, sent as `Authorization: Bearer <key>`.",
)


def get_runtime(request: Request) -> ApiRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, ApiRuntime):
        raise ApiError(503, "starting", "the API is still starting; try again in a moment")
    return runtime


Runtime = Annotated[ApiRuntime, Depends(get_runtime)]


@dataclass(frozen=True)
class Principal:
    owner: str
    key_prefix: str
    scopes: frozenset[str]
    quotas: KeyQuotas

    def allows(self, scope: str) -> bool:
        # admin keys run operations; they may submit and read their own scans too
        return scope in self.scopes or "admin" in self.scopes


def authenticate(
    runtime: Runtime,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    if credentials is None:
        raise unauthorized("send an API key: `Authorization: Bearer <key>`")
    key = credentials.credentials.strip()
    if not keys.looks_like_key(key):
        raise unauthorized("the API key is malformed: keys look like gb_<prefix>_<secret>")
    with runtime.scans.session() as session:
        record = keys.authenticate(session, runtime.secret, key)
        if record is None:
            raise unauthorized("the API key is unknown or revoked: ask for a new one")
        return Principal(
            owner=record.owner,
            key_prefix=record.prefix,
            scopes=frozenset(str(s) for s in record.scopes or ()),
            quotas=runtime.default_quotas.overridden(record.quotas),
        )


def metered(
    request: Request, runtime: Runtime, principal: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """Charge the request to its key's rates (429 when over); the RateLimit headers are added
    to the answer by :class:`growbin.api.quotas.RateLimitHeaders`."""
    family = family_of(request.method, request.url.path)
    headers = runtime.quotas.check_rate(principal.key_prefix, principal.quotas, family)
    request.state.ratelimit = headers
    return principal


def require_scans(principal: Annotated[Principal, Depends(metered)]) -> Principal:
    if not principal.allows("scans"):
        raise ApiError(403, "forbidden", "this API key has no `scans` scope")
    return principal


def require_admin(principal: Annotated[Principal, Depends(metered)]) -> Principal:
    if "admin" not in principal.scopes:
        raise ApiError(403, "forbidden", "this endpoint needs an API key with the `admin` scope")
    return principal


ScansUser = Annotated[Principal, Depends(require_scans)]
Admin = Annotated[Principal, Depends(require_admin)]
