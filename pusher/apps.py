"""App config for the pusher service."""

from django.apps import AppConfig


class PusherConfig(AppConfig):
    """The pusher service."""

    name = "pusher"

    def ready(self) -> None:
        """Drop the pusher's records of a user when accounts deletes the user."""
        from accounts.services import user_removal_hook_register
        from pusher.services import user_keys_delete

        user_removal_hook_register(user_keys_delete)
