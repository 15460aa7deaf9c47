"""The dashboard page: served without login, and everything it loads comes from this server."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from dashboard.views import CONTENT_SECURITY_POLICY

DASHBOARD = "/dashboard/"
# The only absolute URL allowed in the assets: the SVG namespace, an identifier never fetched.
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


class _References(HTMLParser):
    """Collects every src and href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value or "" for name, value in attrs if name in ("src", "href")]


@pytest.fixture
def response(client):
    """The dashboard's response, fetched without any credentials."""
    return client.get(DASHBOARD)


def _references(html: str) -> list[str]:
    """What the page loads: links to itself with another state (`?view=alerts`) load nothing."""
    parser = _References()
    parser.feed(html)
    return [url for url in parser.urls if not url.startswith("?")]


def _asset(url: str) -> Path:
    found = finders.find(url.removeprefix(settings.STATIC_URL))
    assert found, f"{url} is not a static file of the project"
    return Path(found)


def test_the_page_is_html_served_without_login(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for element in ('id="login-form"', 'id="chart"', 'id="search-form"', 'id="more"'):
        assert element in html
    # The script stacks the category bars in this order, and names them in the legend.
    assert 'data-categories="Direct Retried Failed"' in html
    # The explorer's controls, each labelled: the query, its range presets and the split.
    for control in ("q", "range", "from", "to", "split"):
        assert f'<label for="{control}">' in html
    for preset in ("15m", "1h", "24h", "7d", "custom"):
        assert f'<option value="{preset}"' in html


def test_every_reference_is_a_local_static_file(response):
    urls = _references(response.content.decode())

    assert {Path(url).name for url in urls} >= {
        "dashboard.js",
        "alerts.js",
        "chart.js",
        "dashboard.css",
        "favicon.svg",
    }
    for url in urls:
        assert url.startswith(settings.STATIC_URL), url
        assert not re.match(r"(?i)^(https?:)?//", url), url
        assert _asset(url).is_file()


def test_the_assets_fetch_nothing_from_another_host(response):
    for url in _references(response.content.decode()):
        text = _asset(url).read_text(encoding="utf-8")
        assert set(re.findall(r"https?://[^\s\"'()]+", text)) <= {SVG_NAMESPACE}, url


@pytest.mark.parametrize("name", ["dashboard.js", "alerts.js", "chart.js"])
def test_the_scripts_keep_tokens_in_memory_and_never_parse_data_as_html(name: str):
    script = _asset(f"{settings.STATIC_URL}dashboard/{name}").read_text(encoding="utf-8")
    for forbidden in ("localStorage", "sessionStorage", "document.cookie", "innerHTML", "eval("):
        assert forbidden not in script


def test_the_browser_is_told_to_load_only_from_this_origin(response):
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
