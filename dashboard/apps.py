"""App config for the dashboard page."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """Serves /dashboard/."""

    name = "dashboard"
