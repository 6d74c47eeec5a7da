"""Accepting a scan: check the image, keep it, record the scan, and hand the chain to the broker.

A bad image is refused here, before anything is queued, from its header and structure alone:
no pixel is decoded in the request path (the worker decodes it once). What is stored is the
original stripped of metadata and trailing data (:mod:`growbin.scan.originals`). A scan is
"accepted" only once the broker has confirmed the chain's first message; if the broker refuses
(overflow, outage, no confirm), the row is marked refused, the stored original is deleted, and
the caller gets :class:`ScanRefusedError`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass

from celery import Celery

from growbin.errors import GrowbinError
from growbin.scan import records
from growbin.scan.context import ScanContext
from growbin.scan.images import accept_image
from growbin.scan.pipeline import scan_chain
from growbin.scan.records import Scan, ScanStatus
from growbin.scan.storage import make_key

log = logging.getLogger(__name__)

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}


class ScanRefusedError(GrowbinError):
    """The broker did not take the scan; nothing was accepted. Try again later."""

    def __init__(self, scan_id: str, reason: str) -> None:
        self.scan_id = scan_id
        self.reason = reason
        super().__init__(
            f"scan {scan_id} was not accepted: the broker refused it ({reason}). "
            "Nothing is queued; send it again later"
        )


@dataclass(frozen=True)
class Accepted:
    scan_id: str
    task_id: str


def submit_scan(
    app: Celery,
    ctx: ScanContext,
    data: bytes,
    *,
    filename: str | None = None,
    hint: str | None = None,
    owner: str = "anonymous",
    scan_id: str | None = None,
) -> Accepted:
    """Validate, store and queue one photo. Raises ImageRejected or ScanRefusedError.

    ``scan_id``: the id to give the scan (the API takes a quota slot under it first).
    """
    info, stored = accept_image(data, filename=filename)
    scan_id = scan_id or uuid.uuid4().hex
    raw_key = make_key("scans", scan_id, f"raw.{EXTENSIONS.get(info.format, 'bin')}")
    ctx.store.put(raw_key, stored, info.content_type)
    with ctx.session() as session:
        session.add(
            Scan(
                id=scan_id,
                owner=owner,
                status=ScanStatus.QUEUED.value,
                hint=(hint or None) and hint[:100],
                filename=filename and filename[:255],
                source_format=info.format,
                raw_key=raw_key,
                sha256=hashlib.sha256(data).hexdigest(),
                steps={},
            )
        )
    try:
        result = scan_chain(app, scan_id).apply_async()
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        # nothing runs for a refused scan: its photo must not wait for retention cleanup
        _forget_original(ctx, raw_key)
        with ctx.session() as session:
            scan = records.get(session, scan_id)
            if scan is not None:
                scan.status = ScanStatus.REFUSED.value
                scan.error = f"not accepted: {reason}"
        raise ScanRefusedError(scan_id, reason) from exc
    return Accepted(scan_id=scan_id, task_id=str(result.id))


def _forget_original(ctx: ScanContext, raw_key: str) -> None:
    try:
        ctx.store.delete(raw_key)
    except Exception as exc:  # the scan is refused all the same; retention cleanup remains
        log.warning("could not delete the refused scan's original %s: %s", raw_key, exc)
