"""The scan_daily_stats table: one row per UTC day and item, written by analytics_daily.

The row holds counts, not scans: it survives data_cleanup's retention, so the statistics of a
year whose scans were deleted are still there. Types are generic so SQLite can hold it too.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, String
from sqlalchemy.orm import Mapped, mapped_column

from growbin.db.base import Base

# A scan that failed before classification has no item; a primary key cannot be NULL, and the
# parentheses keep this apart from every real item name (those are snake_case words).
NO_ITEM = "(none)"


class ScanDailyStat(Base):
    __tablename__ = "scan_daily_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    item: Mapped[str] = mapped_column(String(40), primary_key=True)
    # every scan created that day, whatever its status when the aggregate ran
    scans: Mapped[int]
    done: Mapped[int]
    failed: Mapped[int]
    refused: Mapped[int]
    # over the done scans that have a confidence; NULL when there are none
    avg_confidence: Mapped[float | None]
    # done scans whose classification came from the vision cache (no provider call)
    cache_hits: Mapped[int]

    def as_dict(self) -> dict[str, object]:
        return {
            "day": self.day.isoformat(),
            "item": self.item,
            "scans": self.scans,
            "done": self.done,
            "failed": self.failed,
            "refused": self.refused,
            "avg_confidence": self.avg_confidence,
            "cache_hits": self.cache_hits,
        }
