"""`manage.py deleteuser USERNAME`: delete a user from Redis."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import user_delete

NO_SUCH_USER = "No user named {username}."


class Command(BaseCommand):
    """Deletes a user."""

    help = "Delete a user (the username matches in any letter case)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        if not user_delete(username=username):
            raise CommandError(NO_SUCH_USER.format(username=username))
        self.stdout.write(self.style.SUCCESS(f"Deleted {username}."))
