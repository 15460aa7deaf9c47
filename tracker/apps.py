"""App config for the tracker service."""

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    """The tracker service."""

    name = "tracker"
