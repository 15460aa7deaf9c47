"""What a page's Content-Security-Policy refused, as the page itself saw it."""

from typing import Any

from playwright.sync_api import BrowserContext, Page

# Runs before any script of the page: each refusal is a `securitypolicyviolation` event.
_LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push({
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
  });
});
"""


def csp_listen(target: BrowserContext | Page) -> None:
    """Record every CSP violation of the pages `target` opens from now on."""
    target.add_init_script(_LISTEN)


def csp_violations(page: Page) -> list[dict[str, Any]]:
    """The violations the current page has reported so far."""
    return page.evaluate("window.__cspViolations || []")
