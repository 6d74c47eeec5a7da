"""The console under test: the API on a free port (see tests/integration/api/conftest.py), a
real worker, and a real headless Chromium driven by Selenium through Debian's chromedriver.

Without Chromium the browser tests skip locally and fail in CI (CI=true), like the other
integration tests without their services; .ci/run installs it (scripts/services.sh).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from tests.integration.api.conftest import ApiUnderTest, api, start_api  # noqa: F401 - fixtures
from tests.integration.conftest import service_missing

DESKTOP = (1280, 900)
PHONE = (375, 812)


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        service_missing(
            "Chromium or chromedriver is not installed: "
            "apt-get install -y chromium chromium-driver (scripts/services.sh does it)"
        )
    assert browser is not None and driver is not None
    return browser, driver


def start_chromium(width: int = DESKTOP[0], height: int = DESKTOP[1]) -> WebDriver:
    browser, driver = chromium_paths()
    options = Options()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    try:
        return webdriver.Chrome(service=Service(executable_path=driver), options=options)
    except WebDriverException as exc:
        service_missing(f"Chromium did not start: {exc.msg}")
        raise


@dataclass
class Console:
    """A browser on the console: sign in, open pages, wait for what the page shows."""

    driver: WebDriver
    url: str

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def sign_in(self, key: str, path: str = "/console") -> None:
        self.open(path)
        field = self.find("#key")
        field.clear()
        field.send_keys(key)
        self.find("form[action='/console/sign-in'] button[type=submit]").click()

    def find(self, css: str) -> WebElement:
        return self.wait(lambda: self._first(css), 15, f"an element {css!r}")

    def _first(self, css: str) -> WebElement | None:
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found else None

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def path(self) -> str:
        current = str(self.driver.current_url)
        return current[len(self.url) :] if current.startswith(self.url) else current

    def cookie(self, name: str) -> str | None:
        found = self.driver.get_cookie(name)
        return None if found is None else str(found["value"])

    def wait(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}; page:\n{self.text()}")
            time.sleep(0.2)

    def wait_text(self, text: str, timeout: float = 30) -> None:
        self.wait(lambda: text in self.text(), timeout, f"{text!r} on {self.path()}")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def console(api: ApiUnderTest, browser: WebDriver) -> Console:  # noqa: F811
    return Console(browser, api.url)
