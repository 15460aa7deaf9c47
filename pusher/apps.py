"""App config for the pusher service."""

from django.apps import AppConfig


class PusherConfig(AppConfig):
    """The pusher service."""

    name = "pusher"

    def ready(self) -> None:
        """Drop the pusher's records of a user when accounts deletes the user; describe the
        syslog listener's counters to /metrics."""
        from accounts.services import user_removal_hook_register
        from pusher.services import user_keys_delete
        from pusher.syslog_listener import syslog_metrics_register

        user_removal_hook_register(user_keys_delete)
        syslog_metrics_register()
