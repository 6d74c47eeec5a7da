"""`growbin demo`: the sample photos through the whole pipeline, with a worker in this process.

Embedded (the default): Celery's in-memory transport and result cache, SQLite for scans, a
dict for caches, the offline providers; nothing to install or start. What only RabbitMQ gives
(broker dead-lettering, TTL, max-length, quorum queues, publisher confirms) is not there, and
the demo says so rather than pretending. With --services the same flow runs on the RabbitMQ,
Redis and PostgreSQL named by GROWBIN_*.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from celery.contrib.testing.worker import start_worker
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live
from rich.table import Table

from growbin.db.base import Base
from growbin.jobs.stats_records import ScanDailyStat
from growbin.runtime.celery_app import create_app
from growbin.runtime.kv import MemoryKV
from growbin.runtime.registry import registrars
from growbin.scan.context import ScanContext, attach_scan_context
from growbin.scan.intake import submit_scan
from growbin.scan.records import STEPS, Scan, ScanStatus
from growbin.scan.samples import load_manifest, sample_bytes
from growbin.settings import Environment, Settings
from growbin.topology.loader import LoadedTopology
from growbin.topology.model import QueueRole

EMBEDDED_UNAVAILABLE = (
    "broker dead-lettering, message TTL, max-length/overflow, quorum queues, delivery limits "
    "and publisher confirms need RabbitMQ: unavailable in the embedded default"
)
FINISHED = {ScanStatus.DONE.value, ScanStatus.FAILED.value, ScanStatus.REFUSED.value}


@dataclass
class DemoOutcome:
    sample: str
    expected: str
    scan: dict[str, object]


def embedded_settings(workdir: Path, topology: str) -> Settings:
    return Settings(
        env=Environment.DEVELOPMENT,
        broker_url=SecretStr("memory://"),
        result_backend_url=SecretStr("cache+memory://"),
        database_url=SecretStr(f"sqlite:///{workdir / 'scans.db'}"),
        image_dir=str(workdir / "images"),
        providers="offline",
        topology=topology,
    )


def run_demo(
    settings: Settings,
    loaded: LoadedTopology,
    console: Console,
    *,
    embedded: bool,
    timeout: float = 120.0,
) -> list[DemoOutcome]:
    with tempfile.TemporaryDirectory(prefix="growbin-demo-") as tmp:
        if embedded:
            settings = embedded_settings(Path(tmp), settings.topology)
            console.print(f"[dim]embedded default: {EMBEDDED_UNAVAILABLE}[/]")
        app = create_app(settings, loaded, registrars=registrars(settings))
        if embedded:
            # the in-memory transport polls its queues; the default 1 s per poll would add a
            # second to every step of the chain
            app.conf.broker_transport_options = {"polling_interval": 0.02}
        context = ScanContext.build(settings, kv=MemoryKV() if embedded else None)
        if embedded:
            tables = [Scan.__table__, ScanDailyStat.__table__]
            Base.metadata.create_all(context.engine, tables=tables)  # type: ignore[arg-type]
        else:
            from growbin.db.migrate import upgrade

            upgrade(settings)
        attach_scan_context(app, context)
        queues = [name for name, q in loaded.topology.queues.items() if q.role is QueueRole.WORK]
        with start_worker(
            app,
            pool="threads",
            concurrency=4,
            perform_ping_check=False,
            loglevel="CRITICAL",
            queues=queues,
        ):
            manifest = load_manifest()
            submitted = {}
            for name, meta in manifest.items():
                # the hint is what a user would type next to the photo ("생수 페트병")
                accepted = submit_scan(
                    app,
                    context,
                    sample_bytes(name),
                    filename=name,
                    hint=str(meta.get("hint") or "") or None,
                    owner="demo",
                )
                submitted[accepted.scan_id] = (name, str(meta["item"]))
            scans = _follow(context, submitted, console, timeout)
        app.close()
        context.engine.dispose()
    return [
        DemoOutcome(sample=name, expected=expected, scan=scans[scan_id])
        for scan_id, (name, expected) in submitted.items()
    ]


def _follow(
    context: ScanContext,
    submitted: dict[str, tuple[str, str]],
    console: Console,
    timeout: float,
) -> dict[str, dict[str, object]]:
    """Poll the scans' rows (as an API client would) until all finish, showing their steps."""
    deadline = time.monotonic() + timeout
    scans: dict[str, dict[str, object]] = {}
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while True:
            with context.session() as session:
                for scan_id in submitted:
                    row = session.get(Scan, scan_id)
                    if row is not None:
                        scans[scan_id] = row.as_dict()
            live.update(_progress_table(submitted, scans))
            done = all(s.get("status") in FINISHED for s in scans.values())
            if (done and len(scans) == len(submitted)) or time.monotonic() > deadline:
                return scans
            time.sleep(0.1)


def _progress_table(
    submitted: dict[str, tuple[str, str]], scans: dict[str, dict[str, object]]
) -> Table:
    marks = {"done": "[green]✓[/]", "started": "[yellow]…[/]", "failed": "[red]✗[/]"}
    table = Table("sample", *STEPS, "status", title="scans")
    for scan_id, (name, _) in submitted.items():
        scan = scans.get(scan_id, {})
        steps = scan.get("steps", {})
        assert isinstance(steps, dict)
        cells = [marks.get(str(steps.get(s, {}).get("state")), "·") for s in STEPS]
        table.add_row(name, *cells, str(scan.get("status", "queued")))
    return table


def results_table(outcomes: list[DemoOutcome]) -> Table:
    table = Table("sample", "item", "ok", "conf.", "providers", "step ms", "total ms")
    table.caption = "step ms: " + " / ".join(STEPS)
    for outcome in outcomes:
        scan = outcome.scan
        result = scan.get("result") or {}
        assert isinstance(result, dict)
        steps = scan.get("steps", {})
        assert isinstance(steps, dict)
        times = [1000 * float(steps.get(s, {}).get("seconds", 0)) for s in STEPS]
        confidence = result.get("confidence")
        providers = result.get("providers") or {}
        vision = (providers.get("vision") or {}).get("provider", "-")
        text = (providers.get("text") or {}).get("provider", "-")
        item = str(result.get("item") or scan.get("status"))
        table.add_row(
            outcome.sample,
            item,
            "[green]yes[/]" if item == outcome.expected else "[red]no[/]",
            f"{confidence:.2f}" if isinstance(confidence, float) else "-",
            f"{vision}/{text}",
            "/".join(f"{t:.0f}" for t in times),
            f"{sum(times):.0f}",
        )
    return table
