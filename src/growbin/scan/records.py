"""The scans table and its repository functions (each takes the session).

Types are portable (JSON, not JSONB) so the embedded default can keep scans in SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, Index, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from growbin.db.base import Base, PortableJSON

STEPS = ("preprocess", "classify", "rules", "guidance", "save")


class ScanStatus(StrEnum):
    QUEUED = "queued"  # accepted: the chain is on the broker
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # a step dead-lettered; `error` says which and why
    REFUSED = "refused"  # the broker did not take it: never accepted, nothing queued


# a scan in one of these is still on its way; every other status is final
OPEN_STATUSES = (ScanStatus.QUEUED.value, ScanStatus.RUNNING.value)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Scan(Base):
    __tablename__ = "scans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20), default=ScanStatus.QUEUED.value)
    hint: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255))
    source_format: Mapped[str | None] = mapped_column(String(10))
    image_key: Mapped[str | None] = mapped_column(String(255))
    thumbnail_key: Mapped[str | None] = mapped_column(String(255))
    raw_key: Mapped[str] = mapped_column(String(255))
    phash: Mapped[str | None] = mapped_column(String(32), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(40))
    item: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[str | None] = mapped_column(String(40))
    confidence: Mapped[float | None] = mapped_column(Float)
    disposal: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    guidance: Mapped[str | None] = mapped_column(Text)
    providers: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    steps: Mapped[dict[str, Any]] = mapped_column(PortableJSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_scans_owner_created_at", "owner", "created_at"),)

    def as_dict(self) -> dict[str, Any]:
        result = None
        if self.status == ScanStatus.DONE.value:
            result = {
                "category": self.category,
                "item": self.item,
                "state": self.state,
                "confidence": self.confidence,
                "disposal": self.disposal,
                "guidance": self.guidance,
                "providers": self.providers,
            }
        return {
            "id": self.id,
            "status": self.status,
            "steps": {name: self.steps.get(name, {"state": "pending"}) for name in STEPS},
            "result": result,
            "error": self.error,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
        }


def get(session: Session, scan_id: str) -> Scan | None:
    return session.get(Scan, scan_id)


def list_for_owner(session: Session, owner: str, *, limit: int = 20, offset: int = 0) -> list[Scan]:
    query = (
        select(Scan)
        .where(Scan.owner == owner)
        .order_by(Scan.created_at.desc(), Scan.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(query))


def mark_step(
    session: Session,
    scan_id: str,
    step: str,
    state: str,
    *,
    only_open: bool = False,
    **details: Any,
) -> Scan | None:
    """Record one step's progress (started, done, failed) with when, where and how.

    ``only_open``: do nothing (return None) when the scan has already ended.
    """
    scan = session.get(Scan, scan_id, with_for_update=session.bind.dialect.name != "sqlite")  # type: ignore[union-attr]
    if scan is None or (only_open and scan.status not in OPEN_STATUSES):
        return None
    steps = dict(scan.steps or {})
    entry = dict(steps.get(step, {}))
    entry.update({"state": state, f"{state}_at": utcnow().isoformat(), **details})
    steps[step] = entry
    scan.steps = steps
    if state == "failed":
        scan.status = ScanStatus.FAILED.value
    elif scan.status == ScanStatus.QUEUED.value:
        scan.status = ScanStatus.RUNNING.value
    return scan


def mark_failed(
    session: Session,
    scan_id: str,
    step: str,
    error: str,
    *,
    cause: str,
    only_open: bool = False,
    **details: Any,
) -> Scan | None:
    """Mark ``step`` failed and the scan with it; ``scan.error`` reads '<step> <cause>'.

    ``error`` is what the step's entry keeps (the exception type, or a word like 'stalled').
    ``only_open``: leave a scan that already ended (done, failed, refused) as it is; the sweeps
    use it, so a scan that finished meanwhile is never turned back.
    """
    scan = mark_step(session, scan_id, step, "failed", error=error, only_open=only_open, **details)
    if scan is not None:
        scan.error = f"{step} {cause}"
    return scan
