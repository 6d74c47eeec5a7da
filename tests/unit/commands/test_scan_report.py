"""`growbin demo` and `growbin scan` read well at 80 columns: nothing cut, blocks apart."""

import re

import pytest
from rich.console import Console

from growbin.commands.scan_report import (
    FIXES,
    close_live,
    photo_block,
    print_blocks,
    progress_table,
    report_of,
    summary_table,
)
from growbin.scan.demo import Photo, ScanOutcome
from growbin.scan.images import ImageRejected, RejectCode, validate_image
from growbin.scan.providers.base import KNOWN_ITEMS
from growbin.scan.records import STEPS
from growbin.scan.rules import load_rules

TIMES = {
    "preprocess": 0.4731,
    "classify": 0.0162,
    "rules": 0.0158,
    "guidance": 0.0123,
    "save": 0.0101,
}


def _scan(item, confidence, *, candidates=(), text_offline=True, evidence="the hint decided"):
    lookup = load_rules().lookup(item)
    return {
        "id": "0" * 32,
        "status": "done",
        "steps": {s: {"state": "done", "seconds": TIMES[s]} for s in STEPS},
        "result": {
            "category": lookup.category.value,
            "item": item,
            "state": None,
            "confidence": confidence,
            "disposal": lookup.model_dump(mode="json"),
            "guidance": "페트병은 투명 페트병 수거함에 버려 주세요.\n1. 내용물을 비우고 헹궈요.",
            "providers": {
                "vision": {
                    "provider": "offline",
                    "model": "colour-rules",
                    "offline": True,
                    "evidence": evidence,
                    "candidates": [{"item": i, "confidence": c} for i, c in candidates],
                },
                "text": {
                    "provider": "offline" if text_offline else "openai",
                    "model": "template" if text_offline else "qwen2.5:7b",
                    "offline": text_offline,
                },
            },
        },
        "error": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "completed_at": "2026-01-01T00:00:01+00:00",
    }


def _outcomes():
    outcomes = []
    for n, item in enumerate(KNOWN_ITEMS):
        name = f"photos/2024-05/IMG_{n:04d}_{item}.jpg"
        outcomes.append(ScanOutcome(Photo(name, b"", expected=item), scan=_scan(item, 0.8)))
    unsure = _scan(
        "fluorescent_lamp",
        0.22,
        candidates=[
            ("fluorescent_lamp", 0.22),
            ("plastic_container", 0.18),
            ("general_waste", 0.05),
        ],
        text_offline=False,
        evidence="no hint; decided by the photo's colour and shape (weak evidence)",
    )
    outcomes.append(ScanOutcome(Photo("unsure.png", b"", expected="can"), scan=unsure))
    try:
        validate_image(b"# Growbin task platform\n", filename="README.md")
    except ImageRejected as exc:
        outcomes.append(ScanOutcome(Photo("README.md", b""), refused=exc))
    failed = {**_scan("can", 0.8), "status": "failed", "result": None}
    failed["error"] = "classify failed: ProviderUnavailableError: openai is not reachable"
    outcomes.append(ScanOutcome(Photo("failed.jpg", b""), scan=failed))
    return outcomes


def _render(*renderables):
    console = Console(width=80, record=True, color_system=None)
    for renderable in renderables:
        console.print(renderable)
        console.line()
    return console.export_text()


def _figures():
    times = [f"{1000 * t:.0f}" for t in TIMES.values()]
    return [*times, f"{1000 * sum(TIMES.values()):.0f}"]


def test_the_summary_table_fits_80_columns_and_cuts_no_item_or_figure():
    outcomes = [  # names as long as the samples' ("glass_bottle.jpg")
        ScanOutcome(Photo(o.photo.name[-16:], b"", expected=o.photo.expected), o.scan, o.refused)
        for o in _outcomes()
    ]
    text = _render(summary_table(outcomes))
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for item in KNOWN_ITEMS:  # the longest, plastic_container, stays on one line
        assert re.search(rf"│ {item}\s+│ yes │", text), item
    for outcome in outcomes:
        assert outcome.photo.name in text
    assert "0.80" in text and "0.22*" in text and "* unsure (below 0.50)" in text
    assert str(round(1000 * sum(TIMES.values()))) in text
    assert re.search(r"│ vision\s+│", text)  # the unsure one: offline vision, a real text model


def test_sample_names_fit_whole_in_the_demo_tables():
    names = ["pet_bottle.png", "can.jpg", "cardboard.jpg", "glass_bottle.jpg", "battery.png"]
    outcomes = [ScanOutcome(Photo(n, b"", expected="can"), scan=_scan("can", 0.8)) for n in names]
    text = _render(summary_table(outcomes), progress_table([(o.photo, o.scan) for o in outcomes]))
    assert "…" not in text
    for name in names:
        assert text.count(name) == 2
    for step in STEPS:
        assert step in text


def test_every_photo_block_at_80_columns_keeps_every_name_and_figure():
    outcomes = _outcomes()
    console = Console(width=80, record=True, color_system=None)
    print_blocks(console, outcomes)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    for outcome in outcomes:
        assert outcome.photo.name in text
    for item in KNOWN_ITEMS:
        assert item in text
    for figure in _figures():
        assert f"{figure} ms" in text
    for step in STEPS:
        assert f"{step} " in text
    flat = " ".join(text.split())
    assert "unsure: fluorescent_lamp 0.22 · plastic_container 0.18 · general_waste 0.05" in flat
    assert "0.22 (unsure), no hint; decided by the photo's colour and shape" in flat


def test_blocks_are_separated_by_a_blank_line():
    outcomes = _outcomes()
    console = Console(width=80, record=True, color_system=None)
    print_blocks(console, outcomes)
    lines = console.export_text().splitlines()
    for outcome in outcomes:
        at = next(i for i, line in enumerate(lines) if line.strip() == outcome.photo.name)
        assert at == 0 or lines[at - 1].strip() == ""


def test_a_block_shows_the_bin_the_steps_what_to_keep_out_notes_and_times():
    can = load_rules().lookup("can")
    text = _render(photo_block(ScanOutcome(Photo("can.jpg", b""), scan=_scan("can", 0.8))))
    flat = " ".join(text.split())
    labels = [line.split()[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert labels[:1] == ["can.jpg"]
    for label in ("item", "confidence", "providers", "bin", "steps", "keep", "notes", "time"):
        assert label in labels
    assert "can · 캔 (알루미늄캔·철캔)" in flat
    assert can.bin.ko in flat
    assert "1. 내용물을 비우고 물로 헹궈요." in flat
    assert "- 페인트·기름·농약 등이 든 통 →" in flat
    assert "vision offline/colour-rules (offline)" in flat
    assert "guidance" not in labels  # the offline template says what the rows say


def test_guidance_written_by_a_model_is_shown():
    scan = _scan("pet_bottle", 0.9, text_offline=False)
    text = _render(photo_block(ScanOutcome(Photo("p.jpg", b""), scan=scan)))
    assert "guidance" in text
    assert "text openai/qwen2.5:7b (a real model)" in " ".join(text.split())


def test_a_refused_photo_shows_its_code_and_its_fix():
    outcome = _outcomes()[-2]
    text = " ".join(_render(photo_block(outcome)).split())
    assert "refused not_an_image" in text
    assert "fix send a JPEG, PNG or WebP photo" in text
    report = report_of(outcome)
    assert report.refused is not None and report.scan is None
    assert report.refused.error == "not_an_image"


def test_every_intake_code_has_a_fix():
    assert set(FIXES) == set(RejectCode)


@pytest.mark.parametrize("terminal", [False, True])
def test_a_live_display_ends_before_the_next_table_starts(terminal):
    from rich.live import Live

    console = Console(width=80, record=True, force_terminal=terminal, color_system=None)
    outcomes = _outcomes()[:2]
    with Live(progress_table([(o.photo, o.scan) for o in outcomes]), console=console):
        pass
    close_live(console)
    console.print(summary_table(outcomes))
    text = console.export_text()
    assert not re.search(r"[┘╯┛][┏┌╭]", text)
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("results"))
    assert lines[top - 1].strip() == ""
