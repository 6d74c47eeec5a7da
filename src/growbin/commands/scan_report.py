"""How scans read in a terminal, for `growbin demo` and `growbin scan`.

Legible at 80 columns: one block per photo with a label column and a value column that wraps
(nothing is cut with '…'), tables narrow enough to fit, and a blank line between blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from growbin.scan.demo import Photo, ScanDict, ScanOutcome
from growbin.scan.images import RejectCode
from growbin.scan.providers.base import CONFIDENT_AT
from growbin.scan.records import STEPS
from growbin.scan.views import IntakeRefusal, PhotoReport, ScanView

# What to do about each intake code, shown apart from the message so it cannot be missed.
FIXES: Mapping[RejectCode, str] = {
    RejectCode.EMPTY: "attach the photo file itself (the file is empty)",
    RejectCode.TOO_LARGE: "send a smaller or more compressed photo",
    RejectCode.NOT_AN_IMAGE: "send a JPEG, PNG or WebP photo",
    RejectCode.UNSUPPORTED_FORMAT: "send a JPEG, PNG or WebP photo (on an iPhone: Settings > "
    "Camera > Formats > Most Compatible)",
    RejectCode.TOO_MANY_PIXELS: "send a smaller photo",
    RejectCode.TOO_WIDE: "send a smaller photo",
    RejectCode.TRUNCATED: "the file was cut off: copy or download the photo again",
    RejectCode.CORRUPT: "the file is damaged: re-save it in a photo app and try again",
}
MARKS = {"done": "[green]✓[/]", "started": "[yellow]▸[/]", "failed": "[red]✗[/]"}
LABEL_WIDTH = 10


def close_live(console: Console) -> None:
    """End a live display (table, progress bar) and leave one blank line after it.

    On a terminal Rich ends the last frame with a newline; written to a file or a pipe it does
    not, and the next table would start on the live one's bottom border ("┘┏━").
    """
    if not console.is_terminal:
        console.line()
    console.line()


def report_of(outcome: ScanOutcome) -> PhotoReport:
    """One photo as `growbin scan --format json` prints it (:class:`PhotoReport`)."""
    refused = None
    if outcome.refused is not None:
        refused = IntakeRefusal(error=outcome.refused.code.value, detail=str(outcome.refused))
    scan = ScanView.model_validate(outcome.scan) if outcome.scan is not None else None
    return PhotoReport(photo=outcome.photo.name, scan=scan, refused=refused)


def progress_table(rows: Sequence[tuple[Photo, ScanDict | None]]) -> Table:
    """Each photo's steps as they run (the demo's live view)."""
    table = Table(title="scans", title_justify="left")
    for column in ("photo", *STEPS):
        table.add_column(column, overflow="fold")
    for photo, scan in rows:
        steps = (scan or {}).get("steps") or {}
        assert isinstance(steps, dict)
        cells = [MARKS.get(str((steps.get(s) or {}).get("state")), "·") for s in STEPS]
        table.add_row(photo.name, *cells)
    return table


def summary_table(outcomes: Sequence[ScanOutcome]) -> Table:
    """One row per photo: the answer, whether it is the expected one, confidence, offline.

    At 80 columns every column but the photo's keeps its width (an item id is never folded);
    only a file name longer than a sample's folds onto more lines.
    """
    expected = any(o.photo.expected for o in outcomes)
    table = Table(title="results", title_justify="left", box=box.SQUARE)
    table.add_column("photo", overflow="fold", min_width=16)  # a sample's name, whole
    table.add_column("item", no_wrap=True)
    if expected:
        table.add_column("ok", no_wrap=True)
    table.add_column("conf.", no_wrap=True)
    table.add_column("offline", no_wrap=True)
    table.add_column("total ms", no_wrap=True, justify="right")
    confidences = [_result(o).get("confidence") for o in outcomes]
    if any(isinstance(c, float) and c < CONFIDENT_AT for c in confidences):
        table.caption = f"* unsure (below {CONFIDENT_AT:.2f}): its block lists the candidates"
        table.caption_justify = "left"
    for outcome in outcomes:
        result = _result(outcome)
        item = str(result.get("item") or _status(outcome))
        confidence = result.get("confidence")
        ok = []
        if expected:
            ok = ["[green]yes[/]" if item == outcome.photo.expected else "[red]no[/]"]
        table.add_row(
            outcome.photo.name,
            item,
            *ok,
            _short_confidence(confidence),
            _offline(result),
            _ms(sum(_seconds(outcome).values())) if outcome.scan else "-",
        )
    return table


def photo_block(outcome: ScanOutcome) -> RenderableType:
    """Everything about one photo, label on the left, wrapped values on the right."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", width=LABEL_WIDTH, no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    rows = list(_rows(outcome))
    for label, value in rows:
        grid.add_row(label, value)
    title = Text(outcome.photo.name, style="bold underline", overflow="fold")
    return Group(title, grid)


def print_blocks(console: Console, outcomes: Iterable[ScanOutcome]) -> None:
    for outcome in outcomes:
        console.print(photo_block(outcome))
        console.line()


def _rows(outcome: ScanOutcome) -> Iterable[tuple[str, RenderableType]]:
    if outcome.refused is not None:
        code = outcome.refused.code
        yield "refused", Text(code.value, style="red")
        yield "why", Text(str(outcome.refused))
        yield "fix", Text(FIXES.get(code, "send a JPEG, PNG or WebP photo"))
        return
    if not outcome.done:
        yield "status", Text(_status(outcome), style="red")
        error = outcome.error or (outcome.scan or {}).get("error")
        if error:
            yield "error", Text(str(error))
        if outcome.scan:
            yield "time", Text(_times(outcome))
        return
    result = _result(outcome)
    disposal = result.get("disposal") or {}
    rule = disposal.get("rule") or {}
    vision = (result.get("providers") or {}).get("vision") or {}
    confidence = float(result.get("confidence") or 0.0)
    name = _ko(rule.get("names"))
    item = str(result.get("item"))
    candidates = vision.get("candidates") or []
    if confidence < CONFIDENT_AT:
        listed = " · ".join(f"{c['item']} {c['confidence']:.2f}" for c in candidates) or item
        yield "item", Text(f"unsure: {listed}\n(the rule below is for {item}, the closest)")
    else:
        yield "item", Text(f"{item} · {name}" if name else item)
    how = str(vision.get("evidence") or "")
    yield "confidence", Text(_confidence(confidence) + (f", {how}" if how else ""))
    yield "providers", Text(_provider_line(result))
    if result.get("state"):
        yield "state", Text(str(result["state"]))
    yield "bin", Text(_ko(disposal.get("bin")) or "-")
    steps = [_ko(s) for s in disposal.get("steps") or []]
    yield "steps", _listing([f"{n}." for n in range(1, len(steps) + 1)], steps)
    keep_out = [_keep_out(entry) for entry in rule.get("not_accepted") or []]
    if keep_out:
        yield "keep out", _listing(["-"] * len(keep_out), keep_out)
    notes = [_ko(n) for n in rule.get("notes") or []]
    if notes:
        yield "notes", _listing(["-"] * len(notes), notes)
    text = (result.get("providers") or {}).get("text") or {}
    if not text.get("offline", True):
        # a model wrote it: show it (the offline template says what the rows above say)
        yield "guidance", Text(str(result.get("guidance") or ""))
    yield "time", Text(_times(outcome))


def _listing(marks: Sequence[str], entries: Sequence[str]) -> RenderableType:
    """A numbered or bulleted list whose wrapped lines stay indented under their entry."""
    if not entries:
        return Text("-")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(ratio=1, overflow="fold")
    for mark, entry in zip(marks, entries, strict=True):
        grid.add_row(mark, entry)
    return grid


def _result(outcome: ScanOutcome) -> dict[str, Any]:
    result = (outcome.scan or {}).get("result") or {}
    assert isinstance(result, dict)
    return result


def _status(outcome: ScanOutcome) -> str:
    if outcome.refused is not None:
        return "refused"
    if outcome.scan is None:
        return "not accepted"
    return str(outcome.scan.get("status"))


def _seconds(outcome: ScanOutcome) -> dict[str, float]:
    steps = (outcome.scan or {}).get("steps") or {}
    assert isinstance(steps, dict)
    return {s: float((steps.get(s) or {}).get("seconds") or 0.0) for s in STEPS}


def _times(outcome: ScanOutcome) -> str:
    """Each step that ran, in milliseconds; a failed step says so, one not reached is left out."""
    seconds = _seconds(outcome)
    steps = (outcome.scan or {}).get("steps") or {}
    assert isinstance(steps, dict)
    parts = []
    for step in STEPS:
        state = (steps.get(step) or {}).get("state")
        if state == "done":
            parts.append(f"{step} {_ms(seconds[step])} ms")
        elif state in ("failed", "started"):
            parts.append(f"{step} {state}")
    return " · ".join([*parts, f"total {_ms(sum(seconds.values()))} ms"])


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f}"


def _confidence(value: float) -> str:
    return f"{value:.2f}" + (" (unsure)" if value < CONFIDENT_AT else "")


def _short_confidence(value: object) -> str:
    if not isinstance(value, float):
        return "-"
    return f"{value:.2f}" + ("*" if value < CONFIDENT_AT else "")


def _offline(result: Mapping[str, Any]) -> str:
    """yes (no real model), no, or which of vision and text was offline."""
    providers = result.get("providers") or {}
    offline = [k for k in ("vision", "text") if (providers.get(k) or {}).get("offline")]
    if not providers:
        return "-"
    return {0: "no", 2: "yes"}.get(len(offline)) or offline[0]


def _provider_line(result: Mapping[str, Any]) -> str:
    providers = result.get("providers") or {}
    parts = []
    for kind in ("vision", "text"):
        found = providers.get(kind) or {}
        where = "offline" if found.get("offline") else "a real model"
        parts.append(f"{kind} {found.get('provider', '-')}/{found.get('model', '-')} ({where})")
    return " · ".join(parts)


def _ko(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("ko") or value.get("en") or "")
    return "" if value is None else str(value)


def _keep_out(entry: Any) -> str:
    if isinstance(entry, Mapping) and "what" in entry:
        instead = _ko(entry.get("instead"))
        return f"{_ko(entry['what'])} → {instead}" if instead else _ko(entry["what"])
    return _ko(entry)
