"""Fixtures the browser tests share: a fresh Chromium tab and its script errors.

test_dashboard.py has its own `page` and `page_errors`, which take precedence there.
"""

from collections.abc import Iterator

import pytest
from browser_config import chromium_page
from playwright.sync_api import Page, expect

TIMEOUT_MS = 15_000

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def page() -> Iterator[Page]:
    """A tab of Debian's Chromium, headless, recording what its CSP refused."""
    with chromium_page() as tab:
        tab.set_default_timeout(TIMEOUT_MS)
        yield tab


@pytest.fixture
def page_errors(page: Page) -> list[str]:
    """Every uncaught JavaScript error of `page` from now on."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors
