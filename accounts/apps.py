"""App config for the accounts service."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The accounts service."""

    name = "accounts"

    def ready(self) -> None:
        """Register the OpenAPI extension that describes our JWT authentication."""
        from accounts import authentication  # noqa: F401
