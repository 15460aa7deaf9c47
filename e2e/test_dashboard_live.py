"""The dashboard's Live toggle in headless Chromium against the running stack (`make up`).

Messages pushed through the API, while the page only listens, must appear in its table on their
own: ticket, EventSource, the live tail through the front, the pipeline behind the push. Its own
account (registered on first use), so that its logins never spend test_dashboard's budget.
"""

import os
import secrets
from collections.abc import Iterator

import pytest
import requests
from browser_config import BASE_URL, CHROMIUM, CHROMIUM_ARGS
from csp_report import csp_listen, csp_violations
from playwright.sync_api import Page, expect, sync_playwright

USERNAME = os.environ.get("E2E_LIVE_USER", "e2elive01")
PASSWORD = os.environ.get("E2E_LIVE_PASSWORD", "e2e-live-pw")
PUSHED = 20
# A tenth of the pushes are retried 4 s later: every one is tracked well within this.
ARRIVAL_MS = 60_000


def _post(path: str, body: dict, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{BASE_URL}{path}", json=body, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def token() -> str:
    """An access token of the live test's account, registered first if the stack lacks it."""
    credentials = {"username": USERNAME, "password": PASSWORD}
    login = _post("/api/auth/login/", credentials)
    if login.status_code == 401:
        registered = _post("/api/auth/register/", credentials)
        assert registered.status_code == 201, registered.text
        login = _post("/api/auth/login/", credentials)
    assert login.status_code == 200, login.text
    return login.json()["access"]


@pytest.fixture
def page() -> Iterator[Page]:
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


def test_live_shows_pushed_messages_as_they_arrive_without_a_reload(page: Page, token: str) -> None:
    marker = f"live{secrets.token_hex(5)}"
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{BASE_URL}/dashboard/")
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#dashboard")).to_be_visible()
    # Search for this run's marker (nothing yet), then follow it live.
    page.fill("#q", marker)
    page.press("#q", "Enter")
    expect(page.locator("#search-count")).to_contain_text("No message matches")
    page.click("#live-toggle")
    expect(page.locator("#live-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#live-state")).to_have_text("live")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    texts = [f"{marker} pushed {number:02d}" for number in range(PUSHED)]
    for text in texts:
        pushed = _post("/api/pusher/push/", {"message": text}, token)
        assert pushed.status_code == 202, pushed.text

    rows = page.locator("#results-body tr")
    expect(rows).to_have_count(PUSHED, timeout=ARRIVAL_MS)
    assert sorted(rows.locator("td.text").all_inner_texts()) == texts
    expect(page.locator("#live-state")).to_have_text("live")
    expect(page.locator("#search-count")).to_contain_text(f"{PUSHED} new live")
    assert page.evaluate("window.__sameDocument") is True
    assert errors == []
    assert csp_violations(page) == []
