"""Recent scans of every owner, with each step's timing and the step that failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from growbin.scan.records import OPEN_STATUSES, STEPS, Scan, ScanStatus

STATUSES = tuple(s.value for s in ScanStatus)


@dataclass(frozen=True)
class StepRow:
    name: str
    state: str  # pending, started, done, failed
    seconds: float | None
    worker: str | None
    attempt: int | None
    error: str | None
    at: str | None  # when it reached its state


@dataclass(frozen=True)
class ScanRow:
    id: str
    owner: str
    status: str
    steps: list[StepRow]
    failed_step: str | None
    error: str | None
    created_at: datetime | None
    completed_at: datetime | None
    item: str | None
    category: str | None

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def total_seconds(self) -> float | None:
        done = [s.seconds for s in self.steps if s.seconds is not None]
        return round(sum(done), 3) if done else None


def _step(name: str, entry: dict[str, Any]) -> StepRow:
    state = str(entry.get("state", "pending"))
    seconds = entry.get("seconds")
    attempt = entry.get("attempt")
    return StepRow(
        name=name,
        state=state,
        seconds=float(seconds) if isinstance(seconds, int | float) else None,
        worker=str(entry["worker"]) if entry.get("worker") else None,
        attempt=int(attempt) if isinstance(attempt, int) else None,
        error=str(entry["error"]) if entry.get("error") else None,
        at=str(entry.get(f"{state}_at")) if entry.get(f"{state}_at") else None,
    )


def row(scan: Scan) -> ScanRow:
    entries = scan.steps or {}
    steps = [_step(name, dict(entries.get(name) or {})) for name in STEPS]
    failed = next((s.name for s in steps if s.state == "failed"), None)
    return ScanRow(
        id=scan.id,
        owner=scan.owner,
        status=scan.status,
        steps=steps,
        failed_step=failed,
        error=scan.error,
        created_at=scan.created_at,
        completed_at=scan.completed_at,
        item=scan.item,
        category=scan.category,
    )


def recent(session: Session, *, status: str | None = None, limit: int = 50) -> list[ScanRow]:
    query = select(Scan).order_by(Scan.created_at.desc(), Scan.id).limit(limit)
    if status:
        query = query.where(Scan.status == status)
    return [row(scan) for scan in session.scalars(query)]


def one(session: Session, scan_id: str) -> ScanRow | None:
    scan = session.get(Scan, scan_id)
    return row(scan) if scan is not None else None
