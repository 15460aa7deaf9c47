"""Middleware: a request id on every request and its logs, and the HTML pages' security policy."""

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.logging import request_id_var

# Accept a caller's id only if it is short and plain, so it is safe in logs and documents.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes `X-Request-ID` (or makes one), exposes it to logs, and sets it on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Bind the id for the duration of the request."""
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        # Django's habit (request.user, request.session): the middleware's own attribute.
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


LENGTH_REQUIRED = "Send a Content-Length: chunked request bodies are not accepted."


class ChunkedBodyMiddleware:
    """Answers 411 to a chunked body: WSGI would hand Django an empty body and a wrong 400."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Refuse `Transfer-Encoding: chunked` without a Content-Length."""
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH"):
            return JsonResponse({"detail": LENGTH_REQUIRED, "code": "length_required"}, status=411)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Sends `settings.CONTENT_SECURITY_POLICY` with every HTML page that has no policy of its own.

    The pages (dashboard, Swagger UI, Redoc) load only this origin's assets, so a strict policy
    costs nothing and stops markup smuggled into a page from loading or running anything.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Add the header to a `text/html` response that lacks one."""
        response = self.get_response(request)
        is_html = response.get("Content-Type", "").startswith("text/html")
        if is_html and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response
