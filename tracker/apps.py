"""App config for the tracker service."""

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    """The tracker service."""

    name = "tracker"

    def ready(self) -> None:
        """Load DRF's views before anything imports `core.exceptions`."""
        # core.exceptions imports rest_framework.views, whose APIView class loads the parser
        # setting, which imports core.parsers, which imports core.exceptions: a cycle that
        # breaks whenever core.exceptions is imported first (as tracker.tasks does in a queue
        # worker). Entering through rest_framework.views resolves it in the working order.
        import rest_framework.views  # noqa: F401
