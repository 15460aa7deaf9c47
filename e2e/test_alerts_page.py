"""The Alerts page and "Alert on this query" in headless Chromium against the running stack.

A search becomes a rule through the explorer's dialog (notifying a channel made by the API);
a pushed message that matches makes it fire; the Alerts page shows its state, last firing and
history, and opens its query in the explorer again. Its own account, registered on first use.
Screenshots go to var/e2e/.
"""

import os
import secrets
from collections.abc import Iterator

import pytest
import requests
from browser_config import BASE_URL, screenshot
from csp_report import csp_violations
from e2e_accounts import account_token, api_post, dashboard_log_in, dashboard_search
from playwright.sync_api import Page, expect

from tests.support.waiting import wait_for

USERNAME = os.environ.get("E2E_ALERTS_USER", "e2ealerts01")
PASSWORD = os.environ.get("E2E_ALERTS_PASSWORD", "e2e-alrt-pw")
# An `any` rule fires within seconds of the match being tracked (P13: 5 s at p95); a tenth of
# pushes are retried 4 s later.
FIRING_SECONDS = 60


@pytest.fixture(scope="module")
def token() -> str:
    """An access token of this test's account."""
    return account_token(USERNAME, PASSWORD)


@pytest.fixture
def marker(token: str) -> Iterator[str]:
    """This run's word; its rules and channels are deleted afterwards (the account stays)."""
    marker = f"alrt{secrets.token_hex(5)}"
    yield marker
    auth = {"Authorization": f"Bearer {token}"}
    for kind in ("rules", "channels"):
        listed = requests.get(f"{BASE_URL}/api/alerts/{kind}/", headers=auth, timeout=30)
        for item in listed.json():
            if marker in item["name"]:
                url = f"{BASE_URL}/api/alerts/{kind}/{item['id']}/"
                requests.delete(url, headers=auth, timeout=30)


def test_a_search_becomes_a_rule_that_fires_and_shows_its_history(
    page: Page, page_errors: list[str], token: str, marker: str
) -> None:
    channel_name = f"ops {marker}"
    channel = api_post(
        "/api/alerts/channels/",
        {"name": channel_name, "type": "email", "to": "ops@example.com"},
        token,
    )
    assert channel.status_code == 201, channel.text
    dashboard_log_in(page, USERNAME, PASSWORD)

    # Search, then make a rule of it: the dialog names the query and lists the channels.
    dashboard_search(page, marker)
    expect(page.locator("#search-count")).to_contain_text("No message matches")
    page.click("#alert-create")
    dialog = page.locator("#alert-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#alert-query")).to_have_text(marker)
    expect(page.locator("#alert-name")).to_be_focused()
    page.fill("#alert-name", f"rule {marker}")
    dialog.get_by_label(channel_name, exact=False).check()
    screenshot(page, "alerts-1-dialog")
    page.click("#alert-submit")
    expect(dialog).to_be_hidden()
    expect(page.locator("#alert-created")).to_contain_text(f"rule {marker}")
    expect(page.locator("#alert-create")).to_be_focused()

    # The Alerts page: the rule, ok, never fired, notifying that channel.
    page.click("#nav-alerts")
    expect(page.locator("#alerts-view")).to_be_visible()
    assert page.url.endswith("?view=alerts")
    row = page.locator("#rules-body tr.row", has_text=f"rule {marker}")
    expect(row.locator("td.state .badge")).to_have_text("ok")
    expect(row.locator("td.when")).to_have_text("never")
    expect(row).to_contain_text(channel_name)

    # A matching message makes it fire.
    pushed = api_post("/api/pusher/push/", {"message": f"{marker} payment failed"}, token)
    assert pushed.status_code == 202, pushed.text

    def firing() -> bool:
        page.click("#rules-refresh")
        expect(page.locator("#rules-panel")).not_to_have_attribute("aria-busy", "true")
        return row.locator("td.state .badge").inner_text() == "firing"

    wait_for(firing, FIRING_SECONDS, "the rule firing on the Alerts page", interval=1)
    expect(row.locator("td.when")).not_to_have_text("never")

    # Its history, opened from the keyboard.
    row.locator("button.expand").focus()
    page.keyboard.press("Enter")
    history = page.locator("#rules-body tr.detail .history")
    expect(history.locator('li[data-kind="state"]').first).to_contain_text("became firing")
    screenshot(page, "alerts-2-history")

    # The rule's query opens in the explorer.
    row.locator("button.rule-query").click()
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#q")).to_have_value(marker)
    expect(page.locator("#search-count")).to_contain_text("1 message match")
    assert page_errors == []
    assert csp_violations(page) == []
