"""Security headers: nosniff and referrer policy everywhere, HSTS when set, a strict page CSP."""

import re

import pytest
from django.conf import settings

SWAGGER_UI = "/api/schema/swagger-ui/"
REDOC = "/api/schema/redoc/"
# An inline script or style element: one without src, or any <style>.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b", re.IGNORECASE)


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (directive.split() for directive in policy.split(";") if directive.strip())
    return {name: sources for name, *sources in parts}


@pytest.mark.parametrize("path", ["/healthz", "/api/auth/me/", SWAGGER_UI])
def test_every_response_says_nosniff_and_keeps_referrers_on_this_site(api_client, path):
    response = api_client.get(path)

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_hsts_is_off_by_default_for_plain_http_runs(api_client):
    assert "Strict-Transport-Security" not in api_client.get("/healthz", secure=True)


def test_hsts_is_sent_on_https_once_configured(api_client, settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True

    secure = api_client.get("/healthz", secure=True)
    plain = api_client.get("/healthz")

    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in plain  # browsers ignore it over plain HTTP


def test_the_pages_policy_runs_no_inline_script_and_loads_only_this_origin():
    directives = _directives(settings.CONTENT_SECURITY_POLICY)

    assert directives["default-src"] == directives["script-src"] == ["'self'"]
    assert directives["object-src"] == directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    # Styles: this origin plus the hashes of the exact <style> elements Redoc injects.
    assert directives["style-src"][0] == "'self'"
    assert all(source.startswith("'sha256-") for source in directives["style-src"][1:])
    for sources in directives.values():
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"} & set(sources)


@pytest.mark.parametrize("path", [SWAGGER_UI, REDOC])
def test_the_api_docs_pages_carry_the_policy_and_nothing_inline(api_client, path):
    response = api_client.get(path)

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), html
    assert not INLINE_STYLE.search(html), html


def test_swagger_uis_start_up_script_is_served_from_its_page_url(api_client):
    page = api_client.get(SWAGGER_UI).content.decode()
    [script_url] = re.findall(r'<script src="([^"]*\?script[^"]*)"', page)

    script = api_client.get(script_url)

    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


def test_json_answers_get_no_page_policy(api_client):
    assert "Content-Security-Policy" not in api_client.get("/healthz")
