"""`manage.py createuser USERNAME [--admin] [--password P]`: create a user in Redis."""

from getpass import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.exceptions import ValidationError

from accounts.exceptions import UsernameTaken
from accounts.services import user_create
from accounts.tokens import ROLE_ADMIN, ROLE_USER
from core.serializers import validation_messages

PASSWORDS_DIFFER = "Passwords do not match."


class Command(BaseCommand):
    """Creates a user or an admin."""

    help = "Create a user (an admin with --admin); prompts for the password unless given."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--admin", action="store_true", help="Give the user the admin role.")
        parser.add_argument(
            "--password", help="The password (visible in shell history; omit to be prompted)."
        )

    def handle(self, *args: Any, username: str, admin: bool, password: str | None, **options: Any):
        if password is None:
            password = getpass("Password: ")
            if getpass("Password (again): ") != password:
                raise CommandError(PASSWORDS_DIFFER)
        role = ROLE_ADMIN if admin else ROLE_USER
        try:
            user = user_create(username=username, password=password, role=role)
        except ValidationError as exc:
            raise CommandError("; ".join(validation_messages(exc.detail))) from None
        except UsernameTaken as exc:
            raise CommandError(str(exc.detail)) from None
        self.stdout.write(
            self.style.SUCCESS(f"Created {role} {user['username']} ({user['user_id']}).")
        )
