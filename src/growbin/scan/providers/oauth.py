"""Social login: check a user's OAuth access token by asking the provider who it belongs to.

Kakao-style: ``GET /v2/user/me`` with ``Authorization: Bearer <token>`` answers
``{"id": 123, "kakao_account": {"email": ...}}``; an OpenID Connect userinfo endpoint answers
``{"sub": "...", "email": ...}``. Both shapes are read. The token never appears in an error,
a log line or a repr.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from growbin.scan.providers.errors import InvalidTokenError, ProviderOutputError, public_url
from growbin.scan.providers.http import json_body, send


class VerifiedUser(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: str
    subject: str
    email: str | None = None


class OAuthVerifier:
    """Verify access tokens against one provider's userinfo endpoint.

    A 401 raises :class:`InvalidTokenError` (fatal: the token will not become valid by
    retrying); a 5xx, a 429 or a timeout raises a transient provider error.
    """

    def __init__(
        self,
        userinfo_url: str = "https://kapi.kakao.com/v2/user/me",
        *,
        provider: str = "kakao",
        timeout: float = 5.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.userinfo_url = userinfo_url
        self.provider = provider
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> OAuthVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OAuthVerifier(provider={self.provider!r}, url={public_url(self.userinfo_url)!r})"

    def verify(self, access_token: str) -> VerifiedUser:
        token = access_token.strip()
        if not token:
            raise InvalidTokenError(
                self.provider,
                "GET",
                self.userinfo_url,
                "the access token is empty",
                status=401,
                fix="send the token the client received from the provider's login",
            )
        response = send(
            self._http,
            "GET",
            self.userinfo_url,
            provider=self.provider,
            secrets=(token,),
            fixes={401: "log in again: the token is invalid or expired"},
            rejected=InvalidTokenError,
            rejected_statuses=(401,),
            headers={"Authorization": f"Bearer {token}"},
        )
        return self._user(json_body(response, provider=self.provider))

    def _user(self, body: Any) -> VerifiedUser:
        if not isinstance(body, dict):
            raise self._output_error("the body is not a JSON object")
        subject = body.get("id", body.get("sub"))
        if subject is None or isinstance(subject, bool) or str(subject) == "":
            raise self._output_error("the body has no user id ('id' or 'sub')")
        return VerifiedUser(provider=self.provider, subject=str(subject), email=_email(body))

    def _output_error(self, reason: str) -> ProviderOutputError:
        return ProviderOutputError(self.provider, "GET", self.userinfo_url, reason)


def _email(body: dict[str, Any]) -> str | None:
    """The email, only when the provider does not say it is unverified.

    An unverified email must not link accounts: anyone can type someone else's address.
    """
    account = body.get("kakao_account")
    source = account if isinstance(account, dict) else body
    email = source.get("email")
    if not isinstance(email, str) or not email:
        return None
    flags = ("is_email_valid", "is_email_verified", "email_verified")
    if any(source.get(flag) is False for flag in flags):
        return None
    return email
