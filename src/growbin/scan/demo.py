"""Photos through the whole pipeline with a worker in this process: `growbin demo` and `scan`.

Embedded (the default): Celery's in-memory transport and result cache, SQLite for scans, a
dict for caches; nothing to install or start. The demo uses the offline providers; `scan` uses
the ones the settings name (GROWBIN_PROVIDERS=openai with a local OpenAI-compatible server
works without any service). What only RabbitMQ gives (broker dead-lettering, TTL, max-length,
quorum queues, publisher confirms) is not there, and the commands say so rather than
pretending. With --services the same flow runs on the RabbitMQ, Redis and PostgreSQL named by
GROWBIN_*.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from celery.contrib.testing.worker import start_worker
from pydantic import SecretStr

from growbin.db.base import Base
from growbin.db.engine import make_engine, session_factory
from growbin.jobs.stats_records import ScanDailyStat
from growbin.runtime.celery_app import create_app
from growbin.runtime.kv import MemoryKV
from growbin.runtime.registry import registrars
from growbin.scan.context import ScanContext, attach_scan_context, providers
from growbin.scan.images import ImageRejected, validate_image
from growbin.scan.intake import ScanRefusedError, submit_scan
from growbin.scan.records import STEPS, Scan, ScanStatus
from growbin.scan.rules.loader import load_rules
from growbin.scan.samples import load_manifest, sample_bytes
from growbin.scan.storage import LocalImageStore
from growbin.settings import Environment, Settings
from growbin.topology.loader import LoadedTopology
from growbin.topology.model import QueueRole

EMBEDDED_UNAVAILABLE = (
    "broker dead-lettering, message TTL, max-length/overflow, quorum queues, delivery limits "
    "and publisher confirms need RabbitMQ: unavailable in the embedded default"
)
FINISHED = {ScanStatus.DONE.value, ScanStatus.FAILED.value, ScanStatus.REFUSED.value}

ScanDict = dict[str, object]
Watch = Callable[[list[tuple["Photo", ScanDict | None]]], None]


@dataclass(frozen=True)
class Photo:
    """One photo to scan: ``name`` is how the user knows it (a sample name, a path)."""

    name: str
    data: bytes
    hint: str | None = None
    expected: str | None = None  # the item a sample shows, to check the answer


@dataclass
class ScanOutcome:
    """What became of one photo: refused at intake, or a scan (as the API shows it), or an
    error that kept it from being accepted or finished."""

    photo: Photo
    scan: ScanDict | None = None
    refused: ImageRejected | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.scan is not None and self.scan.get("status") == ScanStatus.DONE.value


def sample_photos() -> list[Photo]:
    """The shipped samples, each with the hint a user would type next to it ("생수 페트병")."""
    return [
        Photo(
            name=name,
            data=sample_bytes(name),
            hint=str(meta.get("hint") or "") or None,
            expected=str(meta["item"]),
        )
        for name, meta in load_manifest().items()
    ]


def embedded_settings(workdir: Path, settings: Settings, *, offline: bool) -> Settings:
    """``settings`` with every service replaced by an in-process stand-in under ``workdir``."""
    return settings.model_copy(
        update={
            "env": Environment.DEVELOPMENT,
            "broker_url": SecretStr("memory://"),
            "result_backend_url": SecretStr("cache+memory://"),
            "database_url": SecretStr(f"sqlite:///{workdir / 'scans.db'}"),
            "image_dir": str(workdir / "images"),
            **({"providers": "offline"} if offline else {}),
        }
    )


def _embedded_context(settings: Settings) -> ScanContext:
    engine = make_engine(settings)
    # No guards: one process, no Redis to share limits in, and a local model has no quota.
    vision, text = providers(settings)
    context = ScanContext(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        store=LocalImageStore(Path(settings.image_dir)),
        kv=MemoryKV(),
        rules=load_rules(),
        vision=vision,
        text=text,
    )
    tables = [Scan.__table__, ScanDailyStat.__table__]
    Base.metadata.create_all(engine, tables=tables)  # type: ignore[arg-type]
    return context


def run_scans(
    settings: Settings,
    loaded: LoadedTopology,
    photos: Sequence[Photo],
    *,
    embedded: bool,
    offline: bool = False,
    timeout: float = 120.0,
    watch: Watch | None = None,
) -> list[ScanOutcome]:
    """Scan ``photos`` through the pipeline; refused ones never reach it. In photo order."""
    outcomes = [ScanOutcome(photo) for photo in photos]
    for outcome in outcomes:
        try:
            validate_image(outcome.photo.data, filename=outcome.photo.name)
        except ImageRejected as exc:
            outcome.refused = exc
    accepted = [o for o in outcomes if o.refused is None]
    if accepted:
        with tempfile.TemporaryDirectory(prefix="growbin-scan-") as tmp:
            if embedded:
                settings = embedded_settings(Path(tmp), settings, offline=offline)
            _run(settings, loaded, accepted, embedded=embedded, timeout=timeout, watch=watch)
    return outcomes


def _run(
    settings: Settings,
    loaded: LoadedTopology,
    outcomes: list[ScanOutcome],
    *,
    embedded: bool,
    timeout: float,
    watch: Watch | None,
) -> None:
    app = create_app(settings, loaded, registrars=registrars(settings))
    if embedded:
        # the in-memory transport polls its queues; the default 1 s per poll would add a
        # second to every step of the chain
        app.conf.broker_transport_options = {"polling_interval": 0.02}
        context = _embedded_context(settings)
    else:
        from growbin.db.migrate import upgrade

        context = ScanContext.build(settings)
        upgrade(settings)
    attach_scan_context(app, context)
    queues = [name for name, q in loaded.topology.queues.items() if q.role is QueueRole.WORK]
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=4,
            perform_ping_check=False,
            loglevel="CRITICAL",
            queues=queues,
        ):
            submitted: dict[str, ScanOutcome] = {}
            for outcome in outcomes:
                photo = outcome.photo
                try:
                    scan = submit_scan(
                        app, context, photo.data, filename=photo.name, hint=photo.hint, owner="cli"
                    )
                except (ImageRejected, ScanRefusedError) as exc:
                    outcome.error = str(exc)
                    continue
                submitted[scan.scan_id] = outcome
            _follow(context, submitted, outcomes, timeout, watch)
    finally:
        app.close()
        context.engine.dispose()
    for outcome in outcomes:
        status = outcome.scan.get("status") if outcome.scan else None
        if outcome.scan is not None and status not in FINISHED:
            outcome.error = f"did not finish within {timeout:g} s (last status: {status})"


def _settled(scan: ScanDict | None) -> bool:
    """Finished, and for a done scan its last step's record written too: the save step marks
    the row done in its body and records its own time just after."""
    if scan is None or scan.get("status") not in FINISHED:
        return False
    steps = scan.get("steps")
    if scan.get("status") != ScanStatus.DONE.value or not isinstance(steps, dict):
        return True
    return all((steps.get(s) or {}).get("state") == "done" for s in STEPS)


def _follow(
    context: ScanContext,
    submitted: dict[str, ScanOutcome],
    outcomes: list[ScanOutcome],
    timeout: float,
    watch: Watch | None,
) -> None:
    """Poll the scans' rows (as an API client would) until all finish, reporting each poll."""
    deadline = time.monotonic() + timeout
    while True:
        with context.session() as session:
            for scan_id, outcome in submitted.items():
                row = session.get(Scan, scan_id)
                if row is not None:
                    outcome.scan = row.as_dict()
        if watch is not None:
            watch([(o.photo, o.scan) for o in outcomes])
        if all(_settled(o.scan) for o in submitted.values()) or time.monotonic() > deadline:
            return
        time.sleep(0.1)
