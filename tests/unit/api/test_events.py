"""The scan event stream: a snapshot, then only what changed, then the end."""

from __future__ import annotations

import asyncio
import json

from growbin.api.events import changes, encode, scan_events


def scan(status="queued", **steps):
    names = ["preprocess", "classify", "rules", "guidance", "save"]
    return {
        "id": "s1",
        "status": status,
        "error": None,
        "steps": {n: steps.get(n, {"state": "pending"}) for n in names},
    }


def parse(stream: list[str]):
    events = []
    for block in "".join(stream).split("\n\n"):
        lines = block.splitlines()
        if not lines:
            continue
        if lines[0].startswith(":"):
            events.append(("comment", None))
            continue
        name = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
        data = "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))
        if name:
            events.append((name, json.loads(data)))
    return events


def run(states, **options):
    remaining = list(states)

    async def load():
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    async def collect():
        defaults = {"poll": 0.001, "heartbeat": 10.0, "max_seconds": 5.0}
        return [chunk async for chunk in scan_events(load, **{**defaults, **options})]

    return parse(asyncio.run(collect()))


def test_an_event_carries_one_json_document_per_data_line():
    assert encode("step", {"a": "b"}, 3) == 'event: step\nid: 3\ndata: {"a":"b"}\n\n'


def test_only_the_steps_that_changed_become_events():
    before = scan(preprocess={"state": "started"})
    after = scan("running", preprocess={"state": "done"}, classify={"state": "started"})
    assert [(n, d.get("step", d.get("status"))) for n, d in changes(before, after)] == [
        ("step", "preprocess"),
        ("step", "classify"),
        ("status", "running"),
    ]


def test_the_stream_goes_from_snapshot_through_changes_to_the_final_scan():
    events = run(
        [
            scan(),
            scan(),
            scan("running", preprocess={"state": "started"}),
            scan(
                "done",
                **{
                    s: {"state": "done"}
                    for s in ["preprocess", "classify", "rules", "guidance", "save"]
                },
            ),
        ]
    )
    names = [n for n, _ in events]
    assert names[0] == "snapshot"
    assert names[-1] == "end"
    assert events[-1][1]["status"] == "done"
    assert names.count("step") == 6  # started once, then done five times


def test_a_quiet_stream_sends_heartbeats_and_ends_at_its_time_limit():
    events = run([scan()], heartbeat=0.01, max_seconds=0.1, poll=0.005)
    names = [n for n, _ in events]
    assert "comment" in names
    assert names[-1] == "timeout"


def test_a_scan_that_disappears_ends_the_stream():
    async def load():
        return None

    async def collect():
        return [c async for c in scan_events(load, poll=0.01, heartbeat=1, max_seconds=1)]

    assert parse(asyncio.run(collect())) == [("end", {"status": "gone"})]
