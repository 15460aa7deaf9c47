"""The log explorer in headless Chromium against the running stack (`make up`).

OpenTelemetry records (severity, service, attributes) go in through OTLP/JSON and the whole
pipeline; the page then types a query, sees the table and the histogram split by severity,
scrolls for more, expands a row, clicks values into the query (and one out of it), shows a
refused query at its position, and a reload of its URL comes back to the same search.
Screenshots go to var/e2e/ (CI's output). Its own account, registered on first use.
"""

import os
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from browser_config import BASE_URL, screenshot
from csp_report import csp_violations
from e2e_accounts import account_token, api_post, dashboard_log_in, dashboard_search
from playwright.sync_api import Page, expect

from tests.support.waiting import wait_for

USERNAME = os.environ.get("E2E_EXPLORER_USER", "e2eexplorer")
PASSWORD = os.environ.get("E2E_EXPLORER_PASSWORD", "e2e-expl-pw")
PAGE_SIZE = 25  # the explorer's page of results
# (service, severity number, severity text, http.status) of each record: 30 in all, more than
# a page; a tenth of the pushes are retried 4 s later, all tracked well within TRACKED_SECONDS.
RECORDS = [
    ("checkout", 17, "ERROR", 500),
    ("checkout", 9, "INFO", 200),
    ("cart", 13, "WARN", 200),
] * 10
QUOTED_NOTE = 'say "hi" \\ there'  # a value that must be quoted and escaped to be found
TRACKED_SECONDS = 60


@pytest.fixture(scope="module")
def token() -> str:
    """An access token of this test's account."""
    return account_token(USERNAME, PASSWORD)


def _attribute(key: str, value: object) -> dict:
    typed = {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}
    return {"key": key, "value": typed}


@pytest.fixture(scope="module")
def seeded(token: str) -> str:
    """This run's records, pushed through OTLP/JSON and tracked; returns their marker word."""
    marker = f"expl{secrets.token_hex(5)}"
    now_ns = time.time_ns()
    records = []
    for number, (service, severity, text, status) in enumerate(RECORDS):
        attributes = [_attribute("http.status", status)]
        if number == 0:
            attributes.append(_attribute("note", QUOTED_NOTE))
        records.append(
            {
                "timeUnixNano": str(now_ns - number * 1_000_000_000),
                "severityNumber": severity,
                "severityText": text,
                "body": {"stringValue": f"{marker} {service} request {number:02d}"},
                "attributes": attributes,
                "service": service,
            }
        )
    by_service: dict[str, list[dict]] = {}
    for record in records:
        by_service.setdefault(record.pop("service"), []).append(record)
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [_attribute("service.name", service)]},
                "scopeLogs": [{"logRecords": logs}],
            }
            for service, logs in by_service.items()
        ]
    }
    pushed = api_post("/v1/logs", body, token)
    assert pushed.status_code == 200, pushed.text

    def tracked() -> bool:
        found = requests.get(
            f"{BASE_URL}/api/tracker/messages/",
            params={"query": marker, "page_size": 1},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        return found.status_code == 200 and found.json()["count"] == len(RECORDS)

    wait_for(tracked, TRACKED_SECONDS, f"the {len(RECORDS)} records searchable")
    return marker


def _state(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_the_explorer_queries_expands_adds_values_and_restores_from_its_url(
    page: Page, page_errors: list[str], seeded: str
) -> None:
    marker = seeded
    errors: list[str] = []
    requested: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requested.append(request.url))
    dashboard_log_in(page, USERNAME, PASSWORD)

    # Type a query, in the last hour, split by severity.
    page.select_option("#range", "1h")
    page.select_option("#split", "severity")
    dashboard_search(page, marker)
    count = page.locator("#search-count")
    rows = page.locator("#results-body tr.row")
    expect(count).to_contain_text(f"{len(RECORDS)} messages match")
    expect(rows).to_have_count(PAGE_SIZE)
    # The histogram: bars of each severity seeded, and the legend's totals.
    expect(page.locator("#chart")).to_have_attribute("data-split", "severity")
    for severity in ("ERROR", "INFO", "WARN"):
        expect(page.locator(f'#chart rect.bar[data-series="{severity}"]').first).to_be_attached()
    expect(page.locator("#total-total")).to_have_text(str(len(RECORDS)))
    expect(page.locator('#legend button[data-query="severity:[17 TO 20]"]')).to_contain_text("10")
    screenshot(page, "explorer-1-query")

    # Infinite scroll: the end of the table in view brings the next page on its own.
    page.locator("#more").scroll_into_view_if_needed()
    expect(rows).to_have_count(len(RECORDS))
    expect(page.locator("#more")).to_be_hidden()

    # Expand the first record's row (the one with the quoted note) to every field, by keyboard.
    noted = rows.filter(has_text=f"{marker} checkout request 00")
    noted.locator("button.expand").focus()
    page.keyboard.press("Enter")
    expect(noted.locator("button.expand")).to_have_attribute("aria-expanded", "true")
    detail = page.locator("#results-body tr.detail")
    expect(detail).to_have_count(1)
    for field in ("message_id", "service_name", "severity_number", "attributes.http.status"):
        expect(detail.locator("dt", has_text=field).first).to_be_visible()
    screenshot(page, "explorer-2-expanded")

    # A click on a value adds it to the query, quoted and escaped as the language needs.
    detail.locator('button.field-value[data-query^="attributes.note:"]').click()
    expect(page.locator("#q")).to_have_value(
        f'{marker} AND attributes.note:"say \\"hi\\" \\\\ there"'
    )
    expect(count).to_contain_text("1 message match")
    expect(rows).to_have_count(1)

    # Back to the marker; click a service into the query, then Shift-click a severity out.
    dashboard_search(page, marker)
    expect(count).to_contain_text(f"{len(RECORDS)} messages match")
    rows.filter(has_text="checkout request").first.locator("button.expand").click()
    detail.locator('button.field-value[data-query="service:checkout"]').click()
    expect(page.locator("#q")).to_have_value(f"{marker} AND service:checkout")
    expect(count).to_contain_text("20 messages match")
    rows.first.locator("button.expand").click()
    # The newest checkout row is an ERROR or an INFO one: either way, 10 of 20 stay.
    severity = detail.locator('button.field-value[data-query^="severity:"]').first
    clause = severity.get_attribute("data-query")
    assert clause in ("severity:ERROR", "severity:17", "severity:INFO", "severity:9"), clause
    severity.click(modifiers=["Shift"])
    narrowed = f"{marker} AND service:checkout AND -{clause}"
    expect(page.locator("#q")).to_have_value(narrowed)
    expect(count).to_contain_text("10 messages match")
    expect(page.locator("#chart")).to_have_attribute("data-split", "severity")
    screenshot(page, "explorer-3-narrowed")

    # The URL holds the state: a reload (which logs out) comes back to the same search.
    assert _state(page) == {"query": [narrowed], "range": ["1h"], "split": ["severity"]}
    page.reload()
    dashboard_log_in(page, USERNAME, PASSWORD)
    expect(page.locator("#q")).to_have_value(narrowed)
    expect(page.locator("#range")).to_have_value("1h")
    expect(page.locator("#split")).to_have_value("severity")
    expect(count).to_contain_text("10 messages match")
    expect(rows).to_have_count(10)
    screenshot(page, "explorer-4-reloaded")

    # A refused query is shown at its position, and the caret is put there.
    bad = f"{marker} AND service:checkout AND"
    page.fill("#q", bad)
    page.press("#q", "Enter")
    error = page.locator("#search-error")
    expect(error).to_contain_text(f"at position {len(bad)}")
    expect(error.locator("mark")).to_be_visible()
    expect(page.locator("#q")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("document.getElementById('q').selectionStart") == len(bad)
    screenshot(page, "explorer-5-refused")

    host = urlsplit(BASE_URL).hostname
    assert [url for url in requested if urlsplit(url).hostname != host] == []
    assert page_errors == []
    assert csp_violations(page) == []
