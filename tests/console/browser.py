"""Headless Chromium for console tests: the system browser (/usr/bin/chromium), never a download."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

browser_tests = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no system Chromium at {CHROMIUM}"),
]


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, **options):
    """A new page, and the list its script errors are collected in."""
    page = browser.new_page(**options)
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def log_in(page, server: str, username: str) -> None:
    """Log in through the form (any console URL redirects there first) and land on the queue."""
    if "/console/login" not in page.url:
        page.goto(server + "/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]:has-text('Log in')")
    page.wait_for_url("**/console/queue")
