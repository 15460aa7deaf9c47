"""The project's URLs plus the benchmarks' yardsticks: P1's reference view and a bare view."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from bench.reference import ReferencePushApi
from config.urls import handler400, handler404, handler500  # noqa: F401 - Django reads them here
from config.urls import urlpatterns as project_urlpatterns


def bare_view(request: HttpRequest) -> JsonResponse:
    """The floor: Django's request cycle and middleware, no DRF, no Redis (the server table)."""
    return JsonResponse({"ok": True}, status=202)


urlpatterns = [
    *project_urlpatterns,
    path("bench/reference-push/", ReferencePushApi.as_view()),
    path("bench/bare/", bare_view),
]
