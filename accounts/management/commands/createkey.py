"""`manage.py createkey USERNAME --name N --scopes push [read]`: an API key for an operator."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.selectors import user_get_by_username
from accounts.services import API_KEY_EXPIRY_MAX_DAYS, SCOPES, api_key_create

NO_SUCH_USER = "No user named {username}."


class Command(BaseCommand):
    """Creates an API key and prints it, once."""

    help = "Create an API key for USERNAME; the key is printed once and never shown again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument("--scopes", nargs="+", choices=SCOPES, required=True)
        parser.add_argument(
            "--expires-in-days",
            dest="expires_in_days",
            type=int,
            choices=range(1, API_KEY_EXPIRY_MAX_DAYS + 1),
            metavar=f"1..{API_KEY_EXPIRY_MAX_DAYS}",
        )

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = user_get_by_username(username=username)
        if user is None:
            raise CommandError(NO_SUCH_USER.format(username=username))
        created = api_key_create(
            user_id=user["user_id"],
            name=options["name"],
            scopes=options["scopes"],
            expires_in_days=options["expires_in_days"],
        )
        self.stderr.write(
            f"Key {created['key_id']} for {username} ({', '.join(created['scopes'])}):"
        )
        self.stdout.write(created["key"])
