"""`growbin scan PATH...`: your own photos through the scan pipeline, read as a person reads.

Paths may be files (scanned whatever their name: a refused one says why), folders (their
photos by extension, not recursive) and globs (``'photos/**/*.jpg'``, for shells that do not
expand them). Runs on the embedded default, like `growbin demo`, with the providers
GROWBIN_PROVIDERS names; --services runs on the real services instead.

Exit status: 0 every photo was scanned; 1 a scan failed or did not finish within --timeout;
2 a usage error (a path that does not exist, no photos found); 4 some photos were refused at
intake (not an image, too large, ...) and none failed. Each refused photo is shown with its
intake code and the fix.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from growbin.commands.common import err, out, state_of
from growbin.errors import GrowbinError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from growbin.scan.demo import Photo, ScanDict, ScanOutcome

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 4
# A folder's files that are photos, or that a user may think are (refused with their fix).
PHOTO_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".avif", ".gif", ".bmp", ".tif", ".tiff"}
)
_GLOB_CHARS = frozenset("*?[")
# Files larger than this are not read whole: the first MAX_BYTES + 1 bytes get them refused.
_READ_LIMIT = 64 * 1024 * 1024


class ScanUsageError(GrowbinError):
    """The paths name no photo to scan: nothing was started."""

    exit_code = EXIT_USAGE


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def scan(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(help="Photo files, folders of photos, or globs.", show_default=False),
    ],
    hint: Annotated[
        str | None,
        typer.Option(help='What the item is, in your words ("음료 캔", "a beer can").'),
    ] = None,
    services: Annotated[
        bool,
        typer.Option(
            "--services",
            help="Run on the RabbitMQ, Redis and PostgreSQL named by GROWBIN_* instead of the "
            "embedded default.",
        ),
    ] = False,
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", help="text for people; json: one object per photo."),
    ] = OutputFormat.TEXT,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for all scans.")] = 300.0,
) -> None:
    """Scan your own photos: item, confidence, bin, steps, what to keep out, time per step.

    Exit status: 0 all scanned, 1 a scan failed, 2 usage error, 4 some photos refused.
    """
    from growbin.commands.scan_report import print_blocks, report_of
    from growbin.scan.demo import EMBEDDED_UNAVAILABLE, Photo, run_scans

    state = state_of(ctx)
    files = find_photos(paths)
    photos = [Photo(name=str(path), data=_read(path), hint=hint) for path in files]
    loaded = state.topology()
    mode = "services" if services else "embedded"
    notes = err if fmt is OutputFormat.JSON else out
    count = f"{len(photos)} photo{'s' if len(photos) != 1 else ''}"
    notes.print(
        f"growbin scan: {count}, topology [bold]{loaded.topology.name}[/], {mode} mode, "
        f"providers {state.settings.providers}",
        highlight=False,
    )
    if not services:
        notes.print(f"[dim]embedded default: {EMBEDDED_UNAVAILABLE}[/]", highlight=False)
    with _ProgressBar(err) as bar:
        outcomes = run_scans(
            state.settings, loaded, photos, embedded=not services, timeout=timeout, watch=bar.show
        )
    if fmt is OutputFormat.JSON:
        reports = [report_of(o).model_dump(mode="json") for o in outcomes]
        typer.echo(json.dumps(reports, ensure_ascii=False, indent=2))
    else:
        out.line()
        print_blocks(out, outcomes)
        out.print(_summary(outcomes), highlight=False)
    raise typer.Exit(exit_status(outcomes))


def exit_status(outcomes: Sequence[ScanOutcome]) -> int:
    """1 if any photo failed in the pipeline, else 4 if any was refused at intake, else 0."""
    if any(o.refused is None and not o.done for o in outcomes):
        return EXIT_FAILED
    if any(o.refused is not None for o in outcomes):
        return EXIT_REFUSED
    return 0


def find_photos(paths: Sequence[str]) -> list[Path]:
    """The files to scan, in the order given, each once. A missing path is a usage error."""
    found: dict[Path, None] = {}
    for raw in paths:
        for path in _expand(raw):
            found.setdefault(path, None)
    if not found:
        raise ScanUsageError(
            f"no photos in {', '.join(paths)}: give photo files, or folders holding "
            f"{'/'.join(sorted(s.lstrip('.') for s in PHOTO_SUFFIXES))} files"
        )
    return list(found)


def _expand(raw: str) -> Iterator[Path]:
    path = Path(raw)
    if path.is_dir():
        yield from _folder(path)
    elif path.is_file():
        yield path
    elif _GLOB_CHARS & set(raw):
        for match in sorted(glob.glob(raw, recursive=True)):
            found = Path(match)
            if found.is_dir():
                yield from _folder(found)
            elif found.is_file():
                yield found
    else:
        raise ScanUsageError(
            f"{raw!r} does not exist: give a photo file, a folder of photos or a glob"
        )


def _folder(folder: Path) -> Iterator[Path]:
    return (
        p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
    )


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(_READ_LIMIT)
    except OSError as exc:
        raise ScanUsageError(
            f"cannot read {str(path)!r} ({exc.strerror}): check that it is a file you may read"
        ) from None


def _summary(outcomes: Sequence[ScanOutcome]) -> str:
    done = sum(o.done for o in outcomes)
    refused = sum(o.refused is not None for o in outcomes)
    failed = len(outcomes) - done - refused
    parts = [f"{done} scanned"]
    if refused:
        parts.append(f"[yellow]{refused} refused[/] (see the fix under each)")
    if failed:
        parts.append(f"[red]{failed} failed[/]")
    return f"{len(outcomes)} photo{'s' if len(outcomes) != 1 else ''}: " + ", ".join(parts)


class _ProgressBar:
    """A bar of finished scans on stderr, started when the first scan is accepted."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> _ProgressBar:
        return self

    def show(self, rows: list[tuple[Photo, ScanDict | None]]) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from growbin.scan.demo import FINISHED

        if self.progress is None:
            self.progress = Progress(
                "scanning",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.progress.start()
            self.task = self.progress.add_task("scan", total=len(rows))
        finished = sum(1 for _, s in rows if s is not None and s.get("status") in FINISHED)
        assert self.task is not None
        self.progress.update(self.task, completed=finished)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            from growbin.commands.scan_report import close_live

            self.progress.stop()
            close_live(self.console)
