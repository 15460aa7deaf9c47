"""The e2e tests' own accounts (registered on first use), and the dashboard driven as them."""

import requests
from browser_config import BASE_URL
from playwright.sync_api import Page, expect


def api_post(path: str, body: dict, token: str | None = None) -> requests.Response:
    """POST `body` as JSON to the stack, with a bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{BASE_URL}{path}", json=body, headers=headers, timeout=30)


def account_token(username: str, password: str) -> str:
    """An access token of this account, registered first if the stack does not know it."""
    credentials = {"username": username, "password": password}
    login = api_post("/api/auth/login/", credentials)
    if login.status_code == 401:
        registered = api_post("/api/auth/register/", credentials)
        assert registered.status_code == 201, registered.text
        login = api_post("/api/auth/login/", credentials)
    assert login.status_code == 200, login.text
    return login.json()["access"]


def dashboard_log_in(page: Page, username: str, password: str) -> None:
    """Open the dashboard (unless already there) and log in through its form."""
    if "/dashboard/" not in page.url:
        page.goto(f"{BASE_URL}/dashboard/")
    expect(page.locator("#login-form")).to_be_visible()
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-submit")
    expect(page.locator("#dashboard")).to_be_visible()


def dashboard_search(page: Page, query: str) -> None:
    """Type `query` into the explorer's query bar and run it."""
    page.fill("#q", query)
    page.press("#q", "Enter")
