"""`growbin journal status|sync|checkpoint`: look after the journal files on this machine.

Without ``--path`` or ``--worker`` a command acts on every journal in the journal folder
(GROWBIN_JOURNAL_PATH's folder), which is how an operator syncs the journal a dead worker left
behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from growbin.commands.common import err, out, state_of
from growbin.journal.config import JournalConfig
from growbin.journal.store import JournalStore

journal_app = typer.Typer(
    help="The workers' local journals: status, sync to PostgreSQL, checkpoint.",
    no_args_is_help=True,
)

PathOption = Annotated[
    list[Path] | None, typer.Option("--path", help="A journal file (repeatable).")
]
WorkerOption = Annotated[
    str | None, typer.Option("--worker", help="A worker's name (profile@host): its journal.")
]
FormatOption = Annotated[str, typer.Option("--format", help="text or json")]


def journal_files(
    config: JournalConfig, paths: list[Path] | None, worker: str | None
) -> list[Path]:
    if paths:
        return list(paths)
    if worker:
        return [config.path_for(worker)]
    folder = config.directory()
    return sorted(folder.glob("*.db")) if folder.is_dir() else []


def _open(config: JournalConfig, path: Path) -> JournalStore:
    if not path.exists():
        err.print(f"[red]no journal at {path}[/]: check --path, --worker or GROWBIN_JOURNAL_PATH")
        raise typer.Exit(1)
    return JournalStore.open(path, synchronous=config.synchronous, busy_timeout=config.busy_timeout)


def _files_or_exit(
    config: JournalConfig, paths: list[Path] | None, worker: str | None
) -> list[Path]:
    files = journal_files(config, paths, worker)
    if not files:
        err.print(
            f"[yellow]no journal files in {config.directory()}[/]: workers write them there "
            "(GROWBIN_JOURNAL_PATH); pass --path to name one"
        )
        raise typer.Exit(1)
    return files


def _emit(rows: list[dict[str, Any]], fmt: str, columns: list[str], title: str) -> None:
    if fmt == "json":
        out.print_json(json.dumps(rows, default=str))
        return
    if fmt != "text":
        raise typer.BadParameter(f"--format {fmt!r}: use text or json")
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    out.print(table)


@journal_app.command("status")
def journal_status(
    ctx: typer.Context,
    path: PathOption = None,
    worker: WorkerOption = None,
    fmt: FormatOption = "text",
) -> None:
    """Rows by status, rows not yet synced, the last sync, the file sizes, integrity."""
    config = state_of(ctx).settings.journal
    rows = []
    for file in _files_or_exit(config, path, worker):
        with _open(config, file) as store:
            stats = store.stats()
            stats["integrity"] = store.integrity_check()
        last = stats["last_sync"]
        if fmt == "text":
            stats["by_status"] = ", ".join(
                f"{k} {v}" for k, v in sorted(stats["by_status"].items())
            )
            stats["last_sync"] = (
                "never"
                if last is None
                else f"{last['status']} {last['rows']} rows {time.time() - last['at']:.0f} s ago"
                + (f": {last['error']}" if last["error"] else "")
            )
        rows.append(stats)
    columns = ["path", "rows", "by_status", "unsynced", "last_sync", "wal_bytes", "integrity"]
    _emit(rows, fmt, columns, "journals")


@journal_app.command("sync")
def journal_sync(
    ctx: typer.Context,
    path: PathOption = None,
    worker: WorkerOption = None,
    fmt: FormatOption = "text",
) -> None:
    """Upsert the journals' pending rows into PostgreSQL's task_history now."""
    from growbin.db.engine import make_engine
    from growbin.journal.sync import sync_journal

    config = state_of(ctx).settings.journal
    engine = make_engine(state_of(ctx).settings)
    rows = []
    try:
        for file in _files_or_exit(config, path, worker):
            with _open(config, file) as store:
                result = sync_journal(store, engine, batch_size=config.sync_batch_size)
            rows.append(
                {
                    "path": str(file),
                    "status": result.status,
                    "rows": result.rows,
                    "seconds": round(result.seconds, 3),
                    "error": result.error or "",
                }
            )
    finally:
        engine.dispose()
    _emit(rows, fmt, ["path", "status", "rows", "seconds", "error"], "journal sync")
    if any(r["status"] == "failed" for r in rows):
        raise typer.Exit(1)


@journal_app.command("checkpoint")
def journal_checkpoint(
    ctx: typer.Context,
    path: PathOption = None,
    worker: WorkerOption = None,
    fmt: FormatOption = "text",
) -> None:
    """Copy each WAL back into its database file and truncate it (wal_checkpoint(TRUNCATE))."""
    config = state_of(ctx).settings.journal
    rows = []
    for file in _files_or_exit(config, path, worker):
        with _open(config, file) as store:
            pruned = store.prune(time.time() - config.retention)
            checkpoint = store.checkpoint("TRUNCATE")
        rows.append(
            {
                "path": str(file),
                "busy": checkpoint.busy,
                "wal_bytes_before": checkpoint.wal_bytes_before,
                "wal_bytes_after": checkpoint.wal_bytes_after,
                "pruned": pruned,
            }
        )
    _emit(
        rows,
        fmt,
        ["path", "busy", "wal_bytes_before", "wal_bytes_after", "pruned"],
        "journal checkpoint",
    )
