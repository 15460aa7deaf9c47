"""App config for the accounts service."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The accounts service."""

    name = "accounts"
