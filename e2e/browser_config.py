"""Where the e2e browser tests find the stack and how they start Debian's Chromium."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from csp_report import csp_listen
from playwright.sync_api import Page, sync_playwright

BASE_URL = os.environ.get("E2E_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
# Screenshots for CI's output.
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "e2e"
# Debian's Chromium as it is, never a downloaded browser build; no background traffic of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A tab of Debian's Chromium, headless, recording what its CSP refused."""
    if not os.path.isfile(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        tab = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
        csp_listen(tab)
        yield tab
        browser.close()


def screenshot(page: Page, name: str) -> None:
    """Save the whole page as var/e2e/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
