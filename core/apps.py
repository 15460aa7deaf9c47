"""App config for the project's shared plumbing (queue broker, errors, health)."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared infrastructure used by the four service apps."""

    name = "core"
