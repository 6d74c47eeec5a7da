"""Scans in the console: the recent list with step timings and the failing step, and one
scan's steps updating live."""

from __future__ import annotations

import uuid

import pytest
from tests.integration.api.conftest import ApiUnderTest

from growbin.scan import records
from growbin.scan.records import Scan

pytestmark = pytest.mark.integration


def new_scan(api: ApiUnderTest) -> str:
    scan_id = uuid.uuid4().hex
    with api.runtime.scans.session() as session:
        session.add(
            Scan(id=scan_id, owner=api.owner("alice"), raw_key=f"raw/{scan_id}", sha256="0" * 64)
        )
        session.flush()
        records.mark_step(session, scan_id, "preprocess", "started", worker="storage@a")
        records.mark_step(session, scan_id, "preprocess", "done", seconds=0.125)
        records.mark_step(session, scan_id, "classify", "started", worker="ai@b", attempt=1)
    return scan_id


def step_states(console) -> dict[str, str]:
    script = (
        "return Object.fromEntries([...document.querySelectorAll('li[data-step]')]"
        ".map(li => [li.dataset.step, li.dataset.state]));"
    )
    return dict(console.driver.execute_script(script))


def test_a_scans_page_shows_its_steps_live_and_the_list_names_the_failing_step(api, console):
    scan_id = new_scan(api)
    console.sign_in(api.key("oncall", "admin"), path=f"/console/scans/{scan_id}")
    console.wait_text("preprocess")
    assert step_states(console) == {
        "preprocess": "done",
        "classify": "started",
        "rules": "pending",
        "guidance": "pending",
        "save": "pending",
    }
    console.driver.execute_script("window.notReloaded = true")

    with api.runtime.scans.session() as session:
        records.mark_step(session, scan_id, "classify", "done", seconds=1.5)
        records.mark_failed(
            session, scan_id, "rules", "KeyError", cause="failed: KeyError: 'mystery'"
        )

    console.wait(
        lambda: step_states(console).get("rules") == "failed", 30, "the rules step to fail live"
    )
    assert step_states(console)["classify"] == "done"
    assert console.find("#scan-status").text == "failed"
    assert console.driver.execute_script("return window.notReloaded") is True

    console.open("/console/scans?status=failed")
    row = console.find(f"a[href='/console/scans/{scan_id}']").find_element("xpath", "../..").text
    assert "failed" in row
    assert "0.12 s" in row and "1.50 s" in row  # step timings
    assert "rules" in row and "KeyError" in row  # the failing step and why
