"""App config for the validator service."""

from django.apps import AppConfig


class ValidatorConfig(AppConfig):
    """The validator service."""

    name = "validator"
