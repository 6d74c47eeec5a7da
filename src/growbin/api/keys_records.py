"""API keys: stored hashed, each belonging to one user, with scopes (``scans``, ``admin``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from growbin.db.base import Base, PortableJSON
from growbin.scan.records import utcnow


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # shown in lists, not secret
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(PortableJSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    # this key's own quotas (growbin.api.quotas.KeyQuotas as a dict); NULL: the defaults
    quotas: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON, nullable=True)
