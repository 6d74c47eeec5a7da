"""The overview and the dead-letter views fit a desktop (1280 px) and a phone (375 px).

Run by scripts/console_screenshots.py with GROWBIN_CONSOLE_SCREENSHOTS=docs to refresh the
pictures in docs/; otherwise the pictures go to a temporary directory and only the checks
count: nothing is wider than the screen, and every picture is the width asked for.
"""

from __future__ import annotations

import os
import struct
import uuid
from pathlib import Path

import pytest
from tests.integration.console.conftest import DESKTOP, PHONE, Console

from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.service import DeadLetterService
from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.topology import loader

pytestmark = pytest.mark.integration

MAX_HEIGHT = 6000


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


def shoot(console: Console, path: str, width: int, height: int, out: Path) -> Path:
    """The whole page at ``width`` CSS pixels, as a phone or a desktop browser lays it out."""
    driver = console.driver
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    console.open(path)
    console.find("main h1")
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{path} is {overflow} px wider than a {width} px screen"
    full = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {**metrics, "height": min(max(full, height), MAX_HEIGHT)},
    )
    driver.execute_script("window.scrollTo(0, 0)")
    out.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(out)), f"no screenshot of {path}"
    assert png_size(out)[0] == width
    return out


def test_the_overview_and_the_dead_letter_views_fit_a_desktop_and_a_phone(
    api, console, start_worker, tmp_path
):
    target = Path(os.environ.get("GROWBIN_CONSOLE_SCREENSHOTS") or tmp_path)
    start_worker("storage", api.topology_path, env=api.env)
    app = create_app(
        api.settings, loader.load(api.topology_path), registrars=registrars(api.settings)
    )
    try:
        for task in ("growbin.testing.flaky", "growbin.testing.fatal", "growbin.testing.fatal"):
            app.send_task(task, args=(uuid.uuid4().hex,))
    finally:
        app.close()
    with DeadLetterService(api.settings, api.runtime.topology) as service:
        letters = console.wait(
            lambda: (found := service.list(DeadLetterFilter())) and len(found) >= 3 and found,
            90,
            "three dead letters",
        )
    flaky = next(r for r in letters if r.task_name == "growbin.testing.flaky")

    console.sign_in(api.key("oncall", "admin"))
    console.wait_text("Queues")
    pages = {
        "overview": "/console",
        "dead-letters": "/console/dead-letters",
        "dead-letter": f"/console/dead-letters/{flaky.dead_letter_id}",
    }
    for name, path in pages.items():
        for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
            shot = shoot(console, path, width, height, target / f"console-{name}-{label}.png")
            assert shot.stat().st_size > 5000
