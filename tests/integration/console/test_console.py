"""The operations console in a real headless Chromium, against real services and a real worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from tests.integration.api.conftest import ApiUnderTest

from growbin.api.console import session as cookies
from growbin.ops.deadletters.filters import DeadLetterFilter
from growbin.ops.deadletters.service import DeadLetterService
from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.topology import loader

pytestmark = pytest.mark.integration

ROWS = """
return [...document.querySelectorAll(arguments[0] + ' tbody tr')].map(
  row => [...row.querySelectorAll('th, td')].map(cell => cell.textContent.trim()));
"""


@pytest.fixture
def celery_app(api: ApiUnderTest) -> Iterator[Any]:
    app = create_app(
        api.settings, loader.load(api.topology_path), registrars=registrars(api.settings)
    )
    yield app
    app.close()


@pytest.fixture
def store(api: ApiUnderTest) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(api.settings.redis_url.get_secret_value())
    yield client
    client.close()


def dead_letters(api: ApiUnderTest, task: str, state: str | None = None) -> list[Any]:
    flt = DeadLetterFilter.from_options(task=task, states=[state] if state else None)
    with DeadLetterService(api.settings, api.runtime.topology) as service:
        return service.list(flt)


def test_an_admin_signs_in_sees_a_real_failure_replays_it_once_fixed_and_purges_another(
    api, console, start_worker, celery_app, store
):
    start_worker("storage", api.topology_path, env=api.env)
    key, other = uuid.uuid4().hex, uuid.uuid4().hex
    flaky = celery_app.send_task("growbin.testing.flaky", args=(key,))
    celery_app.send_task("growbin.testing.fatal", args=(other,))

    console.sign_in(api.key("oncall", "admin"))
    console.wait_text("Queues")
    assert console.path() == "/console"
    assert "user_input" in console.text()

    # the dead letter, with its reason and traceback, found through the filtered list
    def listed() -> bool:
        console.open("/console/dead-letters?task=growbin.testing.flaky")
        return bool(console.all("table.letters tbody tr"))

    console.wait(listed, 90, "the flaky task's dead letter in the list")
    row = console.find("table.letters tbody tr").text
    assert "failed" in row and "TransientTaskError" in row
    console.find("table.letters tbody th a").click()
    console.wait_text("Traceback")
    page = console.text()
    assert "Reason\nfailed" in page or "Reason failed" in page
    traceback = console.find("pre.traceback").text
    assert "Traceback (most recent call last)" in traceback
    assert f"upstream answered 503 for {key}" in traceback
    assert key in console.find("section[aria-labelledby=args-h]").text

    # fixed upstream, then replay: the confirmation says how many, the outcome shows success
    store.set(f"fixed:{key}", 1)
    try:
        console.find("form input[name=action][value=replay] ~ button").click()
        console.wait_text("Replay 1 dead letter?")
        console.find("button#confirm").click()
        console.wait_text("Replayed 1 dead letter")
        console.wait(
            lambda: "SUCCESS" in console.find("#tasks").text, 60, "the replayed task's success"
        )
        assert flaky.id in console.find("#tasks").text
        assert celery_app.backend.get_task_meta(flaky.id, cache=False)["status"] == "SUCCESS"
    finally:
        store.delete(f"fixed:{key}", f"times:{key}", f"times:{other}")

    # purge the fatal one: tick it, confirm the count, see it gone
    console.wait(
        lambda: dead_letters(api, "growbin.testing.fatal"), 60, "the fatal task's dead letter"
    )
    console.open("/console/dead-letters?task=growbin.testing.fatal")
    console.find("table.letters input[name=ids]").click()
    console.find("form.bulk button[value=purge]").click()
    console.wait_text("Purge 1 dead letter?")
    console.find("button#confirm").click()
    console.wait_text("Purged 1 dead letter")
    assert dead_letters(api, "growbin.testing.fatal") == []
    assert len(dead_letters(api, "growbin.testing.fatal", "purged")) == 1
    assert [r.state for r in dead_letters(api, "growbin.testing.flaky", "all")] == ["replayed"]


def test_a_scans_scope_key_and_no_key_are_refused(api, console):
    console.sign_in(api.key("user", "scans"))
    console.wait_text("has no admin scope")
    assert console.path().startswith("/console/sign-in")
    assert console.cookie(cookies.COOKIE) is None

    console.open("/console/dead-letters")
    console.wait_text("Admin API key")  # sent to the sign-in form
    assert console.path().startswith("/console/sign-in?next=")

    console.sign_in("gb_00000000_not-a-real-key-but-well-formed")
    console.wait_text("unknown or revoked")
    assert console.cookie(cookies.COOKIE) is None

    with httpx.Client(base_url=api.url, follow_redirects=False) as anyone:
        assert anyone.get("/console").status_code == 303
        assert anyone.get("/console/overview/fragment").status_code == 401
        signed = anyone.post("/console/sign-in", data={"key": "", "token": "x"})
        assert signed.status_code == 403  # no sign-in token cookie: refused before the key
        form = anyone.get("/console/sign-in")
        token = form.cookies[cookies.SIGN_IN_COOKIE]
        empty = anyone.post("/console/sign-in", data={"key": "", "token": token})
        assert empty.status_code == 401
        assert cookies.COOKIE not in empty.cookies


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    api, console, start_worker, celery_app
):
    start_worker("storage", api.topology_path, env=api.env)
    celery_app.send_task("growbin.testing.fatal", args=(uuid.uuid4().hex,))
    console.sign_in(api.key("oncall", "admin"))
    console.wait_text("Queues")
    letter = console.wait(
        lambda: dead_letters(api, "growbin.testing.fatal"), 60, "the fatal task's dead letter"
    )[0]
    session = console.cookie(cookies.COOKIE)
    assert session is not None
    csrf = console.find("meta[name=csrf-token]").get_attribute("content")

    with httpx.Client(base_url=api.url, cookies={cookies.COOKIE: session}) as forger:
        # the session alone reads pages...
        assert forger.get("/console/dead-letters").status_code == 200
        # ...but no write goes through without the page's token
        for data in ({"ids": letter.dead_letter_id}, {"ids": letter.dead_letter_id, "csrf": "x"}):
            refused = forger.post("/console/dead-letters/purge", data=data)
            assert refused.status_code == 403
            assert "CSRF" in refused.text
        assert forger.post("/console/sign-out").status_code == 403
        assert [r.state for r in dead_letters(api, "growbin.testing.fatal")] == ["queued"]

        # with the token: every matching one is counted before anything happens
        asked = forger.post(
            "/console/dead-letters/confirm",
            data={
                "action": "purge",
                "selection": "matching",
                "task": "growbin.testing.fatal",
                "csrf": csrf,
            },
        )
        assert asked.status_code == 200 and "Purge 1 dead letter?" in asked.text
        assert [r.state for r in dead_letters(api, "growbin.testing.fatal")] == ["queued"]
        done = forger.post(
            "/console/dead-letters/purge", data={"ids": letter.dead_letter_id, "csrf": csrf}
        )
        assert done.status_code == 200 and "Purged 1 dead letter" in done.text

    # signing out ends the session in the browser
    console.open("/console")
    console.find("form.signout button").click()
    console.wait_text("Admin API key")
    console.open("/console/dead-letters")
    assert console.path().startswith("/console/sign-in")


def test_the_overview_refreshes_itself_without_reloading_the_page(api, console, celery_app):
    console.sign_in(api.key("oncall", "admin"))
    console.wait_text("Queues")
    console.driver.execute_script("window.notReloaded = true")
    # no worker consumes user_input: a task published now shows as depth 1 and "no consumers"
    celery_app.send_task("growbin.testing.record", args=(uuid.uuid4().hex, 1))

    def depth_shown() -> bool:
        # read in one script: the refresh replaces the table's elements under our feet
        rows = console.driver.execute_script(ROWS, "#overview table.stack")
        row = next((cells for cells in rows if cells and cells[0] == "user_input"), None)
        return row is not None and row[2] == "1" and "no consumers" in row[-1]

    console.wait(depth_shown, 45, "the overview to show user_input's new depth")
    assert console.driver.execute_script("return window.notReloaded") is True
    for part in ("Worker profiles", "Beat leader", "Breakers and rate limits", "By reason"):
        assert part in console.text()


def test_the_console_is_used_from_the_keyboard_alone(api, console):
    console.open("/console")
    console.find("#key")
    active = console.driver.switch_to.active_element
    assert active.get_attribute("id") == "key"  # the sign-in form starts in the key field
    active.send_keys(api.key("oncall", "admin") + Keys.ENTER)
    console.wait_text("Queues")

    def press_tab_until(text: str, limit: int = 20) -> Any:
        for _ in range(limit):
            ActionChains(console.driver).send_keys(Keys.TAB).perform()
            focused = console.driver.switch_to.active_element
            if focused.text.strip() == text:
                return focused
        pytest.fail(f"{text!r} was not reached with the Tab key")

    assert press_tab_until("Skip to content").get_attribute("href").endswith("#main")
    press_tab_until("Dead letters").send_keys(Keys.ENTER)
    console.wait_text("dead letters match")
    assert console.path() == "/console/dead-letters"
