"""The console's session cookie and its CSRF token.

Signing in with an admin key sets one cookie: a JSON payload (the key's record id, owner,
prefix, a random CSRF token and the expiry) and an HMAC-SHA256 of it, keyed by a key derived
from ``GROWBIN_API_SECRET``. Nothing in it is secret but the CSRF token, which only the page
(never another site) can read from the forms it is rendered into. The key itself is never
stored: each request looks the record up by id, so a revoked key or one that lost the admin
scope ends its sessions at once.

The cookie is ``HttpOnly`` (scripts cannot read it), ``SameSite=Lax`` and scoped to
``/console``. Lax, not Strict, so that a link from an alert (a chat message, a page) opens the
dead letter it names instead of a sign-in form; Lax still withholds the cookie from every
cross-site POST, and every state-changing request must also carry the session's CSRF token,
checked here in constant time, so a forged form fails twice over. GET pages change nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

COOKIE = "growbin_console"
SIGN_IN_COOKIE = "growbin_console_signin"  # the sign-in form's own CSRF token (double submit)
COOKIE_PATH = "/console"
SESSION_SECONDS = 8 * 3600  # one on-call shift; then sign in again
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
_PURPOSE = b"growbin-console-session-v1"


def session_key(api_secret: bytes) -> bytes:
    """A key for the cookie only, so that a cookie's MAC never equals an API key's hash."""
    return hmac.new(api_secret, _PURPOSE, hashlib.sha256).digest()


@dataclass(frozen=True)
class ConsoleSession:
    key_id: str  # the API key record's id (not the key)
    owner: str
    prefix: str
    csrf: str
    expires: int  # epoch seconds

    @classmethod
    def new(
        cls, key_id: str, owner: str, prefix: str, *, now: float | None = None
    ) -> ConsoleSession:
        issued = int(time.time() if now is None else now)
        return cls(key_id, owner, prefix, secrets.token_urlsafe(32), issued + SESSION_SECONDS)

    def seconds_left(self, now: float | None = None) -> int:
        return max(0, self.expires - int(time.time() if now is None else now))

    def csrf_matches(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), str(token).encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(session: ConsoleSession, key: bytes) -> str:
    payload = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
    mac = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{mac}"


def decode(cookie: str | None, key: bytes, *, now: float | None = None) -> ConsoleSession | None:
    """The session in ``cookie`` if its MAC is right and it has not expired, else None."""
    if not cookie or cookie.count(".") != 1 or len(cookie) > 4096:
        return None
    payload, mac = cookie.split(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), mac.encode()):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = ConsoleSession(
            key_id=str(data["key_id"]),
            owner=str(data["owner"]),
            prefix=str(data["prefix"]),
            csrf=str(data["csrf"]),
            expires=int(data["expires"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return session if session.seconds_left(now) > 0 else None


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(32)


def sign_in_token_matches(cookie: str | None, field: str | None) -> bool:
    return bool(cookie) and bool(field) and hmac.compare_digest(str(cookie), str(field))
