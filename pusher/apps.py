"""App config for the pusher service."""

from django.apps import AppConfig


class PusherConfig(AppConfig):
    """The pusher service."""

    name = "pusher"
