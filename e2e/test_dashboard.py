"""Headless Chromium against the running stack (`make up`): log in, see the bars, search.

Plain pytest, Playwright and urllib, no Django settings. The browser is Debian's
(/usr/bin/chromium), never one fetched by `playwright install`. The base URL comes from
E2E_BASE_URL (default http://127.0.0.1:8000).
"""

import csv
import io
import json
import os
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_config import BASE_URL, CHROMIUM, CHROMIUM_ARGS
from csp_report import csp_listen, csp_violations
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

# One stable account, registered on first use: registration is throttled per address
# (20/hour), so a fresh user per run would soon be refused. Each run marks its own messages.
# A run logs it in three times, once by the API and twice by the form (login allows 10/min
# per user), so about three runs a minute fit.
USERNAME = os.environ.get("E2E_DASHBOARD_USER", "e2edashboard")
PASSWORD = os.environ.get("E2E_DASHBOARD_PASSWORD", "e2e-dash-pw")
SCREENSHOT = Path(__file__).resolve().parents[1] / "var" / "dashboard.png"
READY_SECONDS = 60
TIMEOUT_MS = 15_000
PAGE_SIZE = 25  # the dashboard's page of search results
SEEDED = 30  # more than one page, so "More" has something to fetch
# Markup in a message must come out as text; the address is TEST-NET, never reachable.
MARKUP = '<img src="http://203.0.113.9/pixel.png" alt="x">'

expect.set_options(timeout=TIMEOUT_MS)


def _api(method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """Call the API; return (status, parsed JSON or None), whatever the status."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    # BASE_URL is the tester's own http(s) address, so S310's file: worry does not apply.
    request = urllib.request.Request(f"{BASE_URL}{path}", data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def _wait_until(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {seconds}s")
        time.sleep(0.25)
    return result


def _ready() -> bool:
    try:
        return _api("GET", "/readyz")[0] == 200
    except OSError:  # nothing listens yet
        return False


def _login_api() -> tuple[int, Any]:
    return _api("POST", "/api/auth/login/", {"username": USERNAME, "password": PASSWORD})


@pytest.fixture(scope="module")
def token() -> str:
    """An access token of the e2e account, registered first if the stack does not know it."""
    _wait_until(_ready, READY_SECONDS, f"{BASE_URL}/readyz answering 200 (is `make up` running?)")
    status, body = _login_api()
    if status == 401:
        registered, detail = _api(
            "POST", "/api/auth/register/", {"username": USERNAME, "password": PASSWORD}
        )
        assert registered == 201, detail
        status, body = _login_api()
    assert status == 200, body
    return body["access"]


@pytest.fixture(scope="module")
def seeded(token: str) -> dict[str, Any]:
    """This run's messages, tracked straight away with varied categories over the last days."""
    marker = f"e2e{secrets.token_hex(5)}"
    now = datetime.now(UTC)
    messages = []
    for number in range(SEEDED):
        category = "Failed" if number % 10 == 3 else "Retried" if number % 4 == 1 else "Direct"
        text = f"{marker} {MARKUP}" if number == 0 else f"{marker} order {number:02d} {category}"
        created = now - timedelta(days=number % 6, hours=number % 5, minutes=1 + number)
        messages.append(
            {
                "user_message": text,
                "category": category,
                "request_count": number + 1,
                "created_time": created.isoformat().replace("+00:00", "Z"),
            }
        )
    status, body = _api("POST", "/api/tracker/messages/bulk/", {"messages": messages}, token)
    assert status == 200, body
    assert body["indexed"] == SEEDED, body

    # Indexed is not yet searchable (Elasticsearch refreshes each second): a page that loads
    # its stats in between would draw no bars and never ask again.
    def searchable() -> bool:
        _, found = _api("GET", f"/api/tracker/messages/?q={marker}&page_size=1", token=token)
        return bool(found) and found.get("count") == SEEDED

    _wait_until(searchable, READY_SECONDS, f"the {SEEDED} seeded messages searchable")
    return {"marker": marker, "newest": messages[0]["user_message"]}


@pytest.fixture(scope="module")
def context() -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a throw-away profile."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    profile = tempfile.mkdtemp(prefix="e2e-dashboard-")
    try:
        with sync_playwright() as playwright:
            browser_context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
                locale="en-US",
            )
            csp_listen(browser_context)
            yield browser_context
            browser_context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def requested() -> list[str]:
    """Every URL the page asks for, filled in by the `page` fixture."""
    return []


@pytest.fixture
def page_errors() -> list[str]:
    """Every uncaught JavaScript error of the page."""
    return []


@pytest.fixture
def page(context: BrowserContext, requested: list[str], page_errors: list[str]) -> Iterator[Page]:
    """A fresh tab that records its requests and its script errors."""
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.on("request", lambda request: requested.append(request.url))
    tab.on("pageerror", lambda error: page_errors.append(str(error)))
    yield tab
    tab.close()


def _log_in(page: Page) -> None:
    answer = page.goto(f"{BASE_URL}/dashboard/")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy, policy
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text(USERNAME)


def _assert_only_local_requests(requested: list[str]) -> None:
    host = urlsplit(BASE_URL).hostname
    assert requested, "no request was recorded"
    outside = [url for url in requested if urlsplit(url).hostname != host]
    assert not outside, f"requests left {host}: {outside}"


_CATEGORIES_WITH_BARS = """() => {
  const seen = new Set();
  for (const bar of document.querySelectorAll("#chart rect.bar[data-series]")) {
    if (parseFloat(bar.getAttribute("height")) > 0) seen.add(bar.dataset.series);
  }
  return seen.size >= 2 ? [...seen].sort() : null;
}"""


def test_the_dashboard_draws_the_stats_and_finds_messages(
    page: Page, seeded: dict, requested: list[str], page_errors: list[str]
) -> None:
    """Logging in draws bars of every category; a search lists this run's messages, 25 a page."""
    _log_in(page)
    page.select_option("#range", "7d")  # the seeded messages go back six days

    categories = page.wait_for_function(_CATEGORIES_WITH_BARS).json_value()
    assert set(categories) == {"Direct", "Retried", "Failed"}
    expect(page.locator("#total-total")).not_to_have_text("0")

    page.fill("#q", seeded["marker"])
    page.press("#q", "Enter")
    rows = page.locator("#results-body tr.row")
    expect(page.locator("#search-count")).to_contain_text(f"{SEEDED} messages match")
    expect(rows).to_have_count(PAGE_SIZE)
    # Newest first, and the markup shown as the text it is, not turned into an element.
    expect(rows.first.locator("td.text")).to_have_text(seeded["newest"])
    expect(page.locator("#results-body img")).to_have_count(0)

    # Infinite scroll: the end of the table in view brings the next page.
    page.locator("#more").scroll_into_view_if_needed()
    expect(rows).to_have_count(SEEDED)
    expect(page.locator("#more")).to_be_hidden()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    _assert_only_local_requests(requested)
    assert any("/api/tracker/stats/" in url for url in requested)
    assert not page_errors
    # Logged in, drawn, searched and paged under the page's strict policy: nothing refused.
    assert csp_violations(page) == []


def test_the_export_button_downloads_every_match_as_csv(
    page: Page, seeded: dict, page_errors: list[str]
) -> None:
    """Export downloads the current search's matches as a CSV file in the browser."""
    _log_in(page)
    page.select_option("#range", "7d")
    page.fill("#q", seeded["marker"])
    page.press("#q", "Enter")
    expect(page.locator("#search-count")).to_contain_text(f"{SEEDED} messages match")

    with page.expect_download() as download_info:
        page.click("#export")
    download = download_info.value

    assert download.suggested_filename.startswith("messages-")
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["message_id", "user_id", "user_message"]
    assert len(rows) - 1 == SEEDED  # a header, then one row per match, no cap
    assert not page_errors
    assert csp_violations(page) == []


def _answer(page: Page, pattern: str, status: int, body: dict) -> None:
    """Answer every request matching `pattern` in the browser, without reaching the server."""
    page.route(pattern, lambda route: route.fulfill(status=status, json=body))


def test_api_errors_show_their_detail_or_field_messages(page: Page) -> None:
    """An error answer shows its `detail`, or its `{field: [messages]}`, where it happened."""
    # Simulated in the browser: the shared stack stays up, and no login budget is spent.
    _answer(
        page,
        "**/api/auth/login/",
        200,
        {"access": "a.b.c", "refresh": "d.e.f", "token_type": "Bearer", "expires_in": 900},
    )
    outage = "Elasticsearch is unavailable; try again shortly."
    _answer(page, "**/api/tracker/stats/**", 503, {"detail": outage, "code": "unavailable"})
    _answer(page, "**/api/tracker/messages/**", 400, {"q": ["Ensure this field is short."]})
    _log_in(page)

    expect(page.locator("#stats-error")).to_have_text(outage)
    expect(page.locator("#search-error")).to_have_text("q: Ensure this field is short.")


@pytest.mark.usefixtures("token")
def test_a_revoked_session_brings_back_the_login_form(page: Page, requested: list[str]) -> None:
    """A 401 that a refresh cannot cure shows the login form again, with the reason."""
    with page.expect_response("**/api/auth/login/") as login:
        _log_in(page)
    tokens = login.value.json()
    expect(page.locator("#chart-caption")).not_to_be_empty()  # the stats have arrived
    # Log out behind the page's back: its access and refresh tokens are both revoked now.
    status, body = _api(
        "POST", "/api/auth/logout/", {"refresh": tokens["refresh"]}, tokens["access"]
    )
    assert status == 204, body

    page.click("#refresh")

    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    expect(page.locator("#login-message")).to_contain_text("Please log in again.")
    _assert_only_local_requests(requested)
