"""App config for the accounts service."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The accounts service."""

    name = "accounts"

    def ready(self) -> None:
        """Register the OpenAPI extension of our JWT authentication and the accounts' gauge."""
        from accounts import authentication  # noqa: F401
        from accounts.selectors import erasures_failed
        from core.metrics import gauge_register

        # A failed erasure waits for an operator: alert on this rather than on a log line.
        gauge_register(
            "logger_erasures_failed",
            "Erasures that ended failed and wait for manage.py resumeerasure.",
            lambda: len(erasures_failed()),
        )
