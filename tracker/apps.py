"""App config for the tracker service."""

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    """The tracker service."""

    name = "tracker"

    def ready(self) -> None:
        """Make `/readyz` check Elasticsearch and the message index, which the tracker owns."""
        from core.readiness import readiness_check_register
        from tracker.selectors import index_ready_check

        readiness_check_register("elasticsearch", index_ready_check)
