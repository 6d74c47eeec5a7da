"""The scan pipeline: preprocess -> classify -> rules -> guidance -> save, as one Celery chain.

Each step is its own task, routed by the topology, and passes a small dict to the next; no
step ever waits on another's result. Every step is idempotent by scan id: its output is kept in
the key-value store, so a redelivered step returns it instead of calling a paid API again, and
the final save is an update of the scan's row.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, chain

from growbin.errors import FatalTaskError
from growbin.ops.metrics import record_cache_hit
from growbin.runtime.deadletter import DeathInfo
from growbin.runtime.task_base import GrowbinTask
from growbin.scan import records
from growbin.scan.context import ScanContext, scan_context
from growbin.scan.images import ImageRejected
from growbin.scan.images import preprocess as preprocess_image
from growbin.scan.providers.base import Classification
from growbin.scan.records import Scan, ScanStatus, utcnow
from growbin.scan.storage import make_key

STEP_TTL = 24 * 3600  # how long a step's output is kept for redeliveries and replays
TASKS = {step: f"growbin.scan.{step}" for step in records.STEPS}
CACHE_HITS = "growbin:stats:vision_cache_hits"

logger = logging.getLogger("growbin.scan")


def step_key(scan_id: str, step: str) -> str:
    return f"growbin:scan:{scan_id}:{step}"


def vision_cache_key(phash: str, hint: str | None) -> str:
    return f"growbin:cache:vision:{phash}:{(hint or '').strip().lower()}"


def scan_chain(app: Celery, scan_id: str) -> Any:
    signatures = [app.signature(TASKS["preprocess"], args=(scan_id,))]
    signatures += [app.signature(TASKS[step]) for step in records.STEPS[1:]]
    return chain(*signatures)


class ScanStep(GrowbinTask):
    """A pipeline step: a dead letter marks its scan failed, naming the step and the error."""

    def on_dead_letter(self, info: DeathInfo, args: Any, kwargs: Any) -> None:
        """Mark the scan failed; if that cannot be written, log it and leave it to the sweep.

        The dead letter is already published, so raising here would only replace the task's
        real error with this one (and, after a hard time limit, leave the message unacked).
        The dead-letter sync (growbin.ops.dlq_sync, see growbin.scan.reconcile) finds the
        dead letter of a scan that is still open and marks the scan failed then.
        """
        scan_id = scan_id_of(args)
        if scan_id is None:
            return
        step = self.name.rsplit(".", 1)[-1]
        try:
            with scan_context(self.app).session() as session:
                records.mark_failed(
                    session,
                    scan_id,
                    step,
                    info.exception_type,
                    cause=failure_cause(info.exception_type, info.exception_message, info.reason),
                )
        except Exception as exc:
            logger.warning(
                "scan %s: step %s was dead-lettered (%s) but the scan could not be marked "
                "failed (%s: %s); the dead-letter sync (growbin.ops.dlq_sync) marks it failed "
                "once the database answers",
                scan_id,
                step,
                info.exception_type or info.reason,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )


def scan_id_of(args: Any) -> str | None:
    """The scan a step's arguments belong to: the id itself (first step) or state['scan_id']."""
    first = args[0] if isinstance(args, list | tuple) and args else None
    scan_id = first.get("scan_id") if isinstance(first, dict) else first
    return scan_id if isinstance(scan_id, str) and scan_id else None


def failure_cause(exception_type: str, exception_message: str, reason: str) -> str:
    """'failed: <type>: <message>', or what RabbitMQ said when no worker saw an exception."""
    if exception_type:
        return f"failed: {exception_type}: {exception_message}"
    return f"failed: RabbitMQ dead-lettered it ({reason or 'unknown'})"


Step = Callable[[ScanContext, dict[str, Any]], dict[str, Any]]


def _run_step(task: GrowbinTask, step: str, state: dict[str, Any], body: Step) -> dict[str, Any]:
    """Record progress around ``body``; reuse a finished step's output on redelivery."""
    ctx = scan_context(task.app)
    scan_id = state["scan_id"]
    done = ctx.kv.get(step_key(scan_id, step))
    if done is not None:
        return dict(json.loads(done))
    delivery = task.request.delivery_info or {}
    started = time.monotonic()
    with ctx.session() as session:
        records.mark_step(
            session,
            scan_id,
            step,
            "started",
            routing_key=delivery.get("routing_key"),
            worker=task.request.hostname or socket.gethostname(),
            attempt=int(task.request.retries or 0) + 1,
        )
    output = body(ctx, state)
    details = output.pop("_step", {})
    with ctx.session() as session:
        records.mark_step(
            session, scan_id, step, "done", seconds=round(time.monotonic() - started, 4), **details
        )
    ctx.kv.set(step_key(scan_id, step), json.dumps(output), ttl=STEP_TTL)
    return output


def _preprocess(ctx: ScanContext, state: dict[str, Any]) -> dict[str, Any]:
    scan_id = state["scan_id"]
    with ctx.session() as session:
        scan = session.get(Scan, scan_id)
        if scan is None:
            raise FatalTaskError(f"scan {scan_id} does not exist: it was never accepted")
        raw_key, hint, filename = scan.raw_key, scan.hint, scan.filename
    try:
        image = preprocess_image(ctx.store.get(raw_key), filename=filename)
    except ImageRejected as exc:
        raise FatalTaskError(f"scan {scan_id}: {exc}") from exc
    image_key = make_key("scans", scan_id, "image.jpg")
    thumb_key = make_key("scans", scan_id, "thumbnail.jpg")
    ctx.store.put(image_key, image.image_bytes, "image/jpeg")
    ctx.store.put(thumb_key, image.thumbnail_bytes, "image/jpeg")
    with ctx.session() as session:
        scan = session.get(Scan, scan_id)
        assert scan is not None
        scan.image_key, scan.thumbnail_key = image_key, thumb_key
        scan.phash, scan.source_format = image.phash, image.source_format
    return {"scan_id": scan_id, "phash": image.phash, "hint": hint}


def _classify(ctx: ScanContext, state: dict[str, Any]) -> dict[str, Any]:
    cache_key = vision_cache_key(state["phash"], state.get("hint"))
    cached = ctx.kv.get(cache_key)
    if cached is not None:
        classification = Classification.model_validate_json(cached)
        ctx.kv.incr(CACHE_HITS)
        record_cache_hit(classification.model)
    else:
        image = ctx.store.get(make_key("scans", state["scan_id"], "image.jpg"))
        classification = ctx.vision.classify(image, hint=state.get("hint"))
        ctx.kv.set(cache_key, classification.model_dump_json(), ttl=ctx.settings.scan_cache_ttl)
    return {
        **state,
        "classification": classification.model_dump(mode="json"),
        "_step": {"cached": cached is not None, "provider": classification.provider},
    }


def _rules(ctx: ScanContext, state: dict[str, Any]) -> dict[str, Any]:
    classification = state["classification"]
    lookup = ctx.rules.lookup(classification["item"], classification.get("state"))
    return {
        **state,
        "disposal": lookup.model_dump(mode="json"),
        "_step": {"fallback": lookup.fallback},
    }


def _guidance(ctx: ScanContext, state: dict[str, Any]) -> dict[str, Any]:
    classification = Classification.model_validate(state["classification"])
    guidance = ctx.text.guidance(classification, state["disposal"])
    return {
        **state,
        "guidance": guidance.model_dump(mode="json"),
        "_step": {"provider": guidance.provider},
    }


def _save(ctx: ScanContext, state: dict[str, Any]) -> dict[str, Any]:
    classification, guidance, disposal = (
        state["classification"],
        state["guidance"],
        state["disposal"],
    )
    with ctx.session() as session:
        scan = session.get(Scan, state["scan_id"])
        if scan is None:
            raise FatalTaskError(f"scan {state['scan_id']} disappeared before its result was saved")
        scan.category = disposal.get("category") or classification["category"]
        scan.item = classification["item"]
        scan.state = classification.get("state")
        scan.confidence = classification["confidence"]
        scan.disposal = disposal
        scan.guidance = guidance["text"]
        scan.providers = {
            "vision": {
                k: classification.get(k)
                for k in ("provider", "model", "offline", "evidence", "candidates")
            },
            "text": {k: guidance[k] for k in ("provider", "model", "offline")},
        }
        scan.status = ScanStatus.DONE.value
        scan.completed_at = utcnow()
    return {"scan_id": state["scan_id"], "item": classification["item"], "status": "done"}


_BODIES: dict[str, Step] = {
    "preprocess": _preprocess,
    "classify": _classify,
    "rules": _rules,
    "guidance": _guidance,
    "save": _save,
}


def register(app: Celery) -> None:
    # Steps store no result: the chain passes each output in the next message, a scan's state
    # lives in PostgreSQL, and nobody reads a step's result. So a step never writes to the
    # result backend, and a Redis outage cannot fail a step after its work is done (or hold a
    # pool slot in the backend's retries). A caller that wants one asks with
    # send_task(..., ignore_result=False).
    def make(step: str, body: Step) -> None:
        @app.task(  # type: ignore[untyped-decorator]
            name=TASKS[step], base=ScanStep, bind=True, shared=False, ignore_result=True
        )
        def run(self: GrowbinTask, state: dict[str, Any] | str) -> dict[str, Any]:
            if isinstance(state, str):  # the chain's first step gets the scan id
                state = {"scan_id": state}
            return _run_step(self, step, state, body)

    for step, body in _BODIES.items():
        make(step, body)
