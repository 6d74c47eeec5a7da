"""API keys: made once, shown once, stored only as an HMAC, looked up by that HMAC.

A key reads ``gb_<prefix>_<secret>``. The prefix (8 hex digits) is not secret: lists show it
so people can tell their keys apart and revoke one. The table keeps HMAC-SHA256(api_secret,
key), so a copy of the database alone cannot be used to log in or to test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from growbin.api.keys_records import ApiKey
from growbin.errors import ConfigError, GrowbinError
from growbin.scan.records import utcnow
from growbin.settings import Environment, Settings

logger = logging.getLogger(__name__)

SCOPES = ("scans", "admin")
DEFAULT_SCOPES = ("scans",)
# used only in development and test when GROWBIN_API_SECRET is empty (load_settings refuses an
# empty secret everywhere else), so keys made on a laptop work without ceremony
DEV_SECRET = b"growbin-development-api-secret-not-for-production"
_KEY = re.compile(r"^gb_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f-\x9f]{1,100}$")  # no C0, DEL or C1 controls
LAST_USED_EVERY = timedelta(minutes=1)  # write last_used_at at most this often per key


class ApiKeyError(GrowbinError):
    """An API key cannot be made, found or revoked as asked."""


def api_secret(settings: Settings) -> bytes:
    """The HMAC key: GROWBIN_API_SECRET, or a fixed value in development and test."""
    value = settings.api_secret.get_secret_value()
    if value:
        return value.encode()
    if settings.env in (Environment.DEVELOPMENT, Environment.TEST):
        logger.warning(
            "GROWBIN_API_SECRET is empty: API keys are hashed with a fixed development secret; "
            "set GROWBIN_API_SECRET before keys matter (keys made now stop working then)"
        )
        return DEV_SECRET
    raise ConfigError(
        f"GROWBIN_API_SECRET is empty (GROWBIN_ENV={settings.env.value}): set it to a long "
        "random value, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    )


def hash_key(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def new_key() -> tuple[str, str]:
    """(prefix, key)."""
    prefix = secrets.token_hex(4)
    return prefix, f"gb_{prefix}_{secrets.token_urlsafe(32)}"


def looks_like_key(text: str) -> bool:
    return _KEY.match(text) is not None


def check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(s.strip().lower() for s in scopes if s.strip()))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise ApiKeyError(f"unknown scope(s) {', '.join(unknown)}: use {' or '.join(SCOPES)}")
    return chosen or list(DEFAULT_SCOPES)


def _check_name(what: str, value: str) -> str:
    value = value.strip()
    if not _NAME.match(value):
        raise ApiKeyError(
            f"{what} {value!r} must be 1 to 100 printable characters (no control characters)"
        )
    return value


def create_key(
    session: Session,
    secret: bytes,
    *,
    owner: str,
    name: str,
    scopes: Iterable[str] = (),
    quotas: dict[str, Any] | None = None,
) -> tuple[ApiKey, str]:
    """Add a key; returns the record and the key itself (shown once, never stored).

    ``quotas``: the key's own quotas (:func:`growbin.api.quotas.overrides`); None: defaults.
    """
    prefix, key = new_key()
    record = ApiKey(
        id=uuid.uuid4().hex,
        owner=_check_name("owner", owner),
        name=_check_name("name", name),
        prefix=prefix,
        key_hash=hash_key(secret, key),
        scopes=check_scopes(scopes),
        created_at=utcnow(),
        quotas=quotas or None,
    )
    session.add(record)
    session.flush()
    return record, key


def authenticate(session: Session, secret: bytes, key: str) -> ApiKey | None:
    """The live key record for ``key``, or None (malformed, unknown or revoked)."""
    match = _KEY.match(key)
    if match is None:
        return None
    digest = hash_key(secret, key)
    record = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    # the lookup is by digest; compare again in constant time so a collision on a bad
    # index or a case-folding collation can never let a different key in
    if record is None or not hmac.compare_digest(record.key_hash, digest):
        return None
    if record.revoked_at is not None or record.prefix != match.group(1):
        return None
    now = utcnow()
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_EVERY:
        record.last_used_at = now
    return record


def list_keys(
    session: Session, *, owner: str | None = None, include_revoked: bool = True
) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if owner is not None:
        query = query.where(ApiKey.owner == owner)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke(session: Session, prefix: str) -> ApiKey:
    """Revoke the key with this prefix (or the full key, whose prefix is taken)."""
    ident = prefix.strip()
    match = _KEY.match(ident)
    if match is not None:
        ident = match.group(1)
    if not re.fullmatch(r"[0-9a-f]{8}", ident):
        raise ApiKeyError(
            f"{prefix!r} is not a key prefix: give the 8 hex digits shown by `growbin apikey list`"
        )
    found = list(session.scalars(select(ApiKey).where(ApiKey.prefix == ident)))
    if not found:
        raise ApiKeyError(f"no API key has the prefix {ident}: see `growbin apikey list`")
    if len(found) > 1:
        raise ApiKeyError(
            f"{len(found)} keys share the prefix {ident}; revoke them by id in the database"
        )
    record = found[0]
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record
