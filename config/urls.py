"""Root URL configuration: the apps, health probes and the API schema pages."""

from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from core.apis import HealthzApi, ReadyzApi
from core.exceptions import not_found
from core.metrics import metrics_view
from pusher.apis import OtlpLogsApi

urlpatterns = [
    path("healthz", HealthzApi.as_view(), name="healthz"),
    path("readyz", ReadyzApi.as_view(), name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/auth/", include("accounts.urls")),
    # OTLP/HTTP's fixed path: exporters append /v1/logs to the base URL they are given.
    path("v1/logs", OtlpLogsApi.as_view(), name="otlp-logs"),
    path("api/pusher/", include("pusher.urls")),
    path("api/tracker/", include("tracker.urls")),
    path("api/alerts/", include("alerts.urls")),
    path("dashboard/", include("dashboard.urls")),
    # The shippers' doors at the root, where Elasticsearch and Loki have them (and /es/...).
    path("", include("shippers.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from this URL (?script) instead of
    # inline, so the page's Content-Security-Policy can refuse every inline script.
    path(
        "api/schema/swagger-ui/",
        SpectacularSwaggerSplitView.as_view(url_name="schema"),
        name="swagger-ui",
    ),
    path("api/schema/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Any other API path (e.g. a message id that is not a UUID) gets the JSON 404, even with
    # DEBUG on, where Django would otherwise answer with its HTML debug page. [\s\S] and \Z
    # because "." and "$" would let a path holding a line break through.
    re_path(r"^api/[\s\S]*/\Z", not_found, name="api-not-found"),
]

handler400 = "core.exceptions.bad_request"
handler404 = "core.exceptions.not_found"
handler500 = "core.exceptions.server_error"
