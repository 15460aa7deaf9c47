"""The project's URLs plus the P1 reference view."""

from django.urls import path

from bench.reference import ReferencePushApi
from config.urls import handler400, handler404, handler500  # noqa: F401 - Django reads them here
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("bench/reference-push/", ReferencePushApi.as_view())]
