"""Cleanup jobs: leaked cache keys, old images, old scans, old log files.

Each is safe to run twice or to interrupt: it deletes things one by one (or a batch per
transaction), so a retry after a crash or a soft time limit carries on where the last run
stopped, and deleting something already gone is not an error.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import redis
from celery import Celery
from sqlalchemy import delete, select

from growbin.errors import FatalTaskError
from growbin.runtime.kv import MemoryKV, RedisKV
from growbin.scan.context import ScanContext, scan_context
from growbin.scan.records import Scan, ScanStatus, utcnow
from growbin.scan.storage import InvalidKeyError

logger = logging.getLogger("growbin.jobs.cleanup")

CACHE_PATTERN = "growbin:cache:*"  # vision cache (see growbin.scan.pipeline.vision_cache_key)
STEP_PATTERN = "growbin:scan:*"  # step outputs kept for redeliveries (pipeline.step_key)
SCAN_COUNT = 1000  # keys per SCAN call: a hint to Redis, not a limit
BATCH = 500
FINISHED = frozenset({ScanStatus.DONE.value, ScanStatus.FAILED.value, ScanStatus.REFUSED.value})
DEFAULT_LOG_DIR = ".growbin/logs"
LOG_PATTERN = "*.log*"  # app.log, app.log.1, app.log.2025-01-01.gz

# Check and delete in one step: a key the pipeline re-sets with a TTL between a separate TTL
# call and DEL would otherwise be deleted although it is no longer leaked.
_DELETE_IF_PERSISTENT = """
if redis.call('TTL', KEYS[1]) == -1 then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

T = TypeVar("T")


def check_days(value: object, name: str) -> int:
    """A whole number of days, at least 1: 0 would wipe everything that is finished."""
    days = 0
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            days = int(value)
        except ValueError:
            days = 0
    if days < 1:
        raise FatalTaskError(f"{name}={value!r} is not a whole number of days >= 1: e.g. 30")
    return days


def chunks(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def remove_leaked_keys(client: redis.Redis, patterns: Iterable[str]) -> dict[str, dict[str, int]]:
    """Delete the keys matching ``patterns`` that have no expiry; count what was seen.

    SCAN, never KEYS: KEYS blocks Redis for the whole keyspace, SCAN walks it in small steps.
    """
    script = client.register_script(_DELETE_IF_PERSISTENT)
    counts: dict[str, dict[str, int]] = {}
    for pattern in patterns:
        scanned = removed = 0
        batch: list[str] = []
        for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
            batch.append(key)
            scanned += 1
            if len(batch) >= BATCH:
                removed += _delete_persistent(client, script, batch)
                batch = []
        if batch:
            removed += _delete_persistent(client, script, batch)
        counts[pattern] = {"scanned": scanned, "removed": removed}
    return counts


def _delete_persistent(client: redis.Redis, script: Any, keys: list[str]) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        script(keys=[key], client=pipe)
    return sum(int(done) for done in pipe.execute())


def clean_cache(ctx: ScanContext) -> dict[str, Any]:
    kv = ctx.kv
    if isinstance(kv, RedisKV):
        patterns = [STEP_PATTERN]
        note = "removed keys without an expiry (the rest expire by themselves)"
        if ctx.settings.scan_cache_ttl:
            patterns.insert(0, CACHE_PATTERN)
        else:
            # The pipeline stores cache entries without expiry when the TTL setting is 0.
            note += "; GROWBIN_SCAN_CACHE_TTL=0 keeps cache entries forever, so they were left"
        return {
            "backend": "redis",
            "patterns": remove_leaked_keys(kv.client, patterns),
            "note": note,
        }
    if isinstance(kv, MemoryKV):
        note = "in-memory store: entries expire when read and die with the process; nothing to do"
    else:
        note = f"{type(kv).__name__} cannot be scanned; nothing done"
    return {"backend": type(kv).__name__, "patterns": {}, "note": note}


def clean_images(ctx: ScanContext, older_than: timedelta) -> dict[str, int]:
    """Delete old images under ``scans/<id>/`` unless their scan may still need them.

    A scan that is queued or running keeps its images (its steps read them); finished scans
    and scans with no row (an intake that crashed, a row data_cleanup removed) lose them.
    Keys outside ``scans/`` (reports) are left alone.
    """
    by_scan: dict[str, list[str]] = {}
    other = 0
    for key in ctx.store.list_older_than(older_than):
        parts = key.split("/")
        if len(parts) >= 3 and parts[0] == "scans":
            by_scan.setdefault(parts[1], []).append(key)
        else:
            other += 1
    deleted = kept = 0
    for ids in chunks(sorted(by_scan)):
        with ctx.session() as session:
            query = select(Scan.id, Scan.status).where(Scan.id.in_(ids))
            statuses = {scan_id: status for scan_id, status in session.execute(query)}
        for scan_id in ids:
            status = statuses.get(scan_id)
            if status is not None and status not in FINISHED:
                kept += len(by_scan[scan_id])
                continue
            for key in by_scan[scan_id]:
                ctx.store.delete(key)
                deleted += 1
    old = sum(len(keys) for keys in by_scan.values())
    return {"old": old, "deleted": deleted, "kept_active": kept, "not_scan_images": other}


def _delete_image(ctx: ScanContext, key: str | None) -> int:
    if not key:
        return 0
    try:
        ctx.store.delete(key)
    except InvalidKeyError as exc:
        # One malformed row must not block the retention of every row after it.
        logger.warning("data_cleanup skipped an image key it cannot delete: %s", exc)
        return 0
    return 1


def clean_scans(ctx: ScanContext, older_than: timedelta) -> dict[str, int]:
    """Delete scans created before now - ``older_than``, and their images, 500 at a time.

    Images go first, then the rows, in the rows' transaction: a crash in between leaves rows
    whose images are gone, and the next run deletes them again (deleting is idempotent).
    """
    cutoff = utcnow() - older_than
    rows = images = batches = 0
    while True:
        with ctx.session() as session:
            query = (
                select(Scan.id, Scan.raw_key, Scan.image_key, Scan.thumbnail_key)
                .where(Scan.created_at < cutoff)
                .order_by(Scan.created_at, Scan.id)
                .limit(BATCH)
            )
            batch = session.execute(query).all()
            if not batch:
                break
            for row in batch:
                for key in (row.raw_key, row.image_key, row.thumbnail_key):
                    images += _delete_image(ctx, key)
            session.execute(delete(Scan).where(Scan.id.in_([row.id for row in batch])))
        rows += len(batch)
        batches += 1
        if len(batch) < BATCH:
            break
    return {"scans_deleted": rows, "image_keys_deleted": images, "batches": batches}


def clean_logs(directory: Path, older_than: timedelta) -> dict[str, Any]:
    """Delete regular files named ``*.log*`` under ``directory`` last written before the cutoff.

    Symbolic links are neither followed nor deleted, so a link cannot lead the job outside.
    """
    root = directory.resolve()
    if root == Path(root.anchor):
        raise FatalTaskError(
            f"log_dir={str(directory)!r} is the filesystem root: give the log directory itself"
        )
    if not root.is_dir():
        return {"dir": str(root), "found": False, "deleted": 0, "bytes": 0}
    cutoff = time.time() - older_than.total_seconds()
    deleted = freed = 0
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for name in fnmatch.filter(filenames, LOG_PATTERN):
            path = Path(dirpath, name)
            try:
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue  # rotated or removed meanwhile
            deleted += 1
            freed += info.st_size
    return {"dir": str(root), "found": True, "deleted": deleted, "bytes": freed}


def register(app: Celery) -> None:
    @app.task(name="growbin.jobs.cache_cleanup", shared=False)  # type: ignore[untyped-decorator]
    def cache_cleanup() -> dict[str, Any]:
        """Remove cache and step-output keys that leaked without an expiry (hourly)."""
        return clean_cache(scan_context(app))

    @app.task(name="growbin.jobs.images_cleanup", shared=False)  # type: ignore[untyped-decorator]
    def images_cleanup(older_than_days: int = 30) -> dict[str, int]:
        """Delete images older than N days whose scan is finished or unknown (daily)."""
        days = check_days(older_than_days, "older_than_days")
        return clean_images(scan_context(app), timedelta(days=days))

    @app.task(name="growbin.jobs.data_cleanup", shared=False)  # type: ignore[untyped-decorator]
    def data_cleanup(older_than_days: int = 365) -> dict[str, int]:
        """Delete scans older than N days with their images; daily statistics stay."""
        days = check_days(older_than_days, "older_than_days")
        return clean_scans(scan_context(app), timedelta(days=days))

    @app.task(name="growbin.jobs.logs_cleanup", shared=False)  # type: ignore[untyped-decorator]
    def logs_cleanup(older_than_days: int = 14, log_dir: str = DEFAULT_LOG_DIR) -> dict[str, Any]:
        """Delete ``*.log*`` files older than N days under ``log_dir`` (daily).

        There is no log-directory setting: the default, ``.growbin/logs``, is relative to the
        worker's working directory; schedule the task with ``log_dir`` to point elsewhere.
        """
        days = check_days(older_than_days, "older_than_days")
        return clean_logs(Path(log_dir), timedelta(days=days))
