"""The dashboard page: a static shell; the browser fetches the data with the user's token."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.generic import TemplateView

from core.contract import CATEGORIES

# Everything the page needs comes from this origin; the policy makes the browser refuse the rest,
# so a message that smuggles markup still cannot load or run anything.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class DashboardView(TemplateView):
    """Serves the dashboard's HTML; no login here, the data calls carry the bearer token."""

    template_name = "dashboard/index.html"
    # The stats API's categories, in the order the bars stack (bottom first).
    extra_context = {"categories": CATEGORIES}

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Render the page with its content security policy."""
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
