"""`manage.py listusers`: print every user as a table."""

from typing import Any

from django.core.management.base import BaseCommand

from accounts.selectors import USER_PUBLIC_FIELDS, users_list

NO_USERS = "No users."


class Command(BaseCommand):
    """Lists users as a table."""

    help = "List users: user_id, username, role, created_time (oldest first)."

    def handle(self, *args: Any, **options: Any) -> None:
        users = users_list()
        if not users:
            self.stdout.write(NO_USERS)
            return
        rows = [list(USER_PUBLIC_FIELDS)]
        rows += [[user[field] for field in USER_PUBLIC_FIELDS] for user in users]
        widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
        for row in rows:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())
