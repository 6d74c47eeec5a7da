"""task_history: the workers' journals, synced into PostgreSQL (one row per task id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from growbin.db.base import Base, PortableJSON
from growbin.scan.records import utcnow


class TaskHistory(Base):
    __tablename__ = "task_history"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    status: Mapped[str] = mapped_column(String(20), index=True)
    worker: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
