"""Swagger UI and Redoc in headless Debian Chromium, under their Content-Security-Policy.

Swagger UI: authorize with a token, "Try it out" on /api/auth/me/. Redoc: the API drawn.
Neither page may have a script or a style refused by its policy.
"""

import os
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_config import BASE_URL, CHROMIUM, CHROMIUM_ARGS
from csp_report import csp_listen, csp_violations
from playwright.sync_api import (
    APIRequestContext,
    Page,
    Playwright,
    Response,
    Route,
    expect,
    sync_playwright,
)

SCREENSHOT = Path(__file__).resolve().parents[1] / "var" / "e2e" / "swagger-ui.png"
LOCAL_HOSTS = {"127.0.0.1"}
# Schemes that never reach a network: inline assets and the browser's own pages.
OFFLINE_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension"}
UI_TIMEOUT_MS = 15_000
TITLE = "Python Logger API"


@dataclass
class Traffic:
    """What the page asked for, and what of it would have left 127.0.0.1."""

    seen: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


def _random_credentials() -> tuple[str, str]:
    """A username of 15 ASCII letters and digits and a 10-character password."""
    alphabet = string.ascii_lowercase + string.digits
    username = "ui" + "".join(secrets.choice(alphabet) for _ in range(13))
    return username, secrets.token_urlsafe(8)[:10]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver (its bundled Node only; no browser comes with it)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def api(playwright: Playwright) -> Iterator[APIRequestContext]:
    """An HTTP client for the API, outside the browser."""
    context = playwright.request.new_context(base_url=BASE_URL)
    yield context
    context.dispose()


@pytest.fixture(scope="module")
def access_token(api: APIRequestContext) -> str:
    """The access token that scripts/e2e.sh made, or one of a new user."""
    token = os.environ.get("E2E_ACCESS_TOKEN")
    if token:
        return token
    username, password = _random_credentials()
    credentials = {"username": username, "password": password}
    registered = api.post("/api/auth/register/", data=credentials)
    assert registered.status == 201, registered.text()
    login = api.post("/api/auth/login/", data=credentials)
    assert login.status == 200, login.text()
    return login.json()["access"]


@pytest.fixture
def traffic() -> Traffic:
    """The record of one page's requests."""
    return Traffic()


@pytest.fixture
def page(playwright: Playwright, traffic: Traffic, tmp_path: Path) -> Iterator[Page]:
    """A page in a fresh Chromium profile that refuses, and records, every non-local request."""
    context = playwright.chromium.launch_persistent_context(
        user_data_dir=tmp_path / "profile",
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 1600},
    )

    def guard(route: Route) -> None:
        url = route.request.url
        traffic.seen.append(url)
        parts = urlsplit(url)
        if parts.scheme in OFFLINE_SCHEMES or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            traffic.outside.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    csp_listen(context)
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    yield page
    context.close()


def test_swagger_ui_authorize_and_try_me(page: Page, traffic: Traffic, access_token: str) -> None:
    """Authorize with a bearer token, execute GET /api/auth/me/, and see 200; all of it local."""
    _assert_strict_policy(page.goto(f"{BASE_URL}/api/schema/swagger-ui/"))
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(TITLE)

    page.locator(".swagger-ui .auth-wrapper button.authorize").click()
    dialog = page.locator(".swagger-ui .dialog-ux .modal-ux")
    # The dialog holds a form per security scheme: the bearer JWT's is `jwtAuth`.
    jwt_form = dialog.locator("form").filter(has_text="jwtAuth")
    jwt_form.locator("input").fill(access_token)
    jwt_form.locator("button.modal-btn.auth.authorize").click()
    expect(jwt_form.locator("button.modal-btn.auth").first).to_have_text("Logout")
    jwt_form.locator("button.btn-done").click()

    operation = page.locator("#operations-auth-api_auth_me_retrieve")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    with page.expect_response(f"{BASE_URL}/api/auth/me/") as answer:
        operation.locator("button.execute").click()
    response = answer.value
    assert response.request.headers["authorization"] == f"Bearer {access_token}"
    assert response.status == 200, response.text()
    assert set(response.json()) == {"user_id", "username", "role", "request_count"}

    shown = operation.locator(".live-responses-table .response .response-col_status")
    expect(shown).to_have_text("200")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    # The viewport holds the title, the locked Authorize button and the 200 answer.
    page.screenshot(path=SCREENSHOT)

    assert any(urlsplit(url).path == "/api/schema/" for url in traffic.seen)
    assert traffic.outside == [], traffic.outside
    assert csp_violations(page) == []


def _assert_strict_policy(answer: Response | None) -> None:
    """The page came with a policy that runs no inline or evaluated script."""
    assert answer is not None and answer.status == 200
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self';" in policy, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy


def test_redoc_draws_the_api_under_its_policy(page: Page, traffic: Traffic) -> None:
    """Redoc renders the schema; none of its scripts or styles is refused by the policy."""
    _assert_strict_policy(page.goto(f"{BASE_URL}/api/schema/redoc/"))
    expect(page.locator("h1").first).to_contain_text(TITLE)
    expect(page.locator("h2").filter(has_text="Log in").first).to_be_visible()

    # Redoc's attribution logo is an image on a CDN: the policy refusing it is the point.
    refused = [
        violation
        for violation in csp_violations(page)
        if not (violation["directive"] == "img-src" and violation["blocked"].startswith("http"))
    ]
    # A refused inline style means the CSS Redoc injects as it loads has changed: Chromium's
    # console names the new hash for REDOC_STYLE_HASHES in config/settings/base.py.
    assert refused == [], refused
    assert traffic.outside == [], traffic.outside
