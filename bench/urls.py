"""The project's URLs plus the P1 reference view."""

from django.urls import path

from bench.reference import reference_push
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("bench/reference-push/", reference_push)]
