"""The dashboard's Live toggle in headless Chromium against the running stack (`make up`).

Messages pushed through the API, while the page only listens, must appear in its table on their
own: ticket, EventSource, the live tail through the front, the pipeline behind the push. Its own
account (registered on first use), so that its logins never spend test_dashboard's budget.
"""

import os
import secrets

import pytest
from csp_report import csp_violations
from e2e_accounts import account_token, api_post, dashboard_log_in, dashboard_search
from playwright.sync_api import Page, expect

USERNAME = os.environ.get("E2E_LIVE_USER", "e2elive01")
PASSWORD = os.environ.get("E2E_LIVE_PASSWORD", "e2e-live-pw")
PUSHED = 20
# A tenth of the pushes are retried 4 s later: every one is tracked well within this.
ARRIVAL_MS = 60_000


@pytest.fixture(scope="module")
def token() -> str:
    """An access token of this test's account."""
    return account_token(USERNAME, PASSWORD)


def test_live_shows_pushed_messages_as_they_arrive_without_a_reload(
    page: Page, page_errors: list[str], token: str
) -> None:
    marker = f"live{secrets.token_hex(5)}"
    dashboard_log_in(page, USERNAME, PASSWORD)
    # Search for this run's marker (nothing yet), then follow it live.
    dashboard_search(page, marker)
    expect(page.locator("#search-count")).to_contain_text("No message matches")
    page.click("#live-toggle")
    expect(page.locator("#live-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#live-state")).to_have_text("live")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    texts = [f"{marker} pushed {number:02d}" for number in range(PUSHED)]
    for text in texts:
        pushed = api_post("/api/pusher/push/", {"message": text}, token)
        assert pushed.status_code == 202, pushed.text

    rows = page.locator("#results-body tr.row")
    expect(rows).to_have_count(PUSHED, timeout=ARRIVAL_MS)
    assert sorted(rows.locator("td.text").all_inner_texts()) == texts
    expect(page.locator("#live-state")).to_have_text("live")
    expect(page.locator("#search-count")).to_contain_text(f"{PUSHED} new live")
    assert page.evaluate("window.__sameDocument") is True
    assert page_errors == []
    assert csp_violations(page) == []
