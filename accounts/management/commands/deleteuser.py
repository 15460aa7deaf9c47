"""`manage.py deleteuser USERNAME [--purge]`: delete a user; with --purge, erase their messages.

Either way the user's record, name, counter, API keys and idempotency records go, and their
tokens and keys are refused at once. --purge erases the user as DELETE /api/auth/me/ does: the
queue cluster deletes every message of theirs (those still in the pipeline included), and the
command follows its progress with a bar until it is done.
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.selectors import erasure_get, user_get_by_username
from accounts.services import user_delete, user_erase

NO_SUCH_USER = "No user named {username}."
FAILED = (
    "The erasure {erasure_id} failed after deleting {messages_deleted} message(s): {reason}. "
    "Fix the cause, then run `manage.py resumeerasure {erasure_id}`."
)
NOT_DONE = (
    "The erasure {erasure_id} is still {status} after {timeout:.0f}s: is the queue cluster "
    "running? It goes on there; follow /api/auth/erasures/{erasure_id}/."
)


class Command(BaseCommand):
    """Deletes a user, or erases them with every message (--purge)."""

    help = "Delete a user (any letter case); --purge also deletes all their messages and waits."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--purge", action="store_true", help="Erase their messages too.")
        parser.add_argument(
            "--timeout", type=float, default=600.0, help="--purge: seconds to wait at most."
        )

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        if not options["purge"]:
            if user_delete(username=username) is None:
                raise CommandError(NO_SUCH_USER.format(username=username))
            self.stdout.write(self.style.SUCCESS(f"Deleted {username}."))
            return
        user = user_get_by_username(username=username)
        if user is None:
            raise CommandError(NO_SUCH_USER.format(username=username))
        erasure_id = user_erase(user_id=user["user_id"])["erasure_id"]
        status = self._follow(erasure_id, options["timeout"])
        if status["status"] == "failed":
            raise CommandError(FAILED.format(**status))
        if status["status"] != "done":
            raise CommandError(NOT_DONE.format(timeout=options["timeout"], **status))
        self.stdout.write(
            self.style.SUCCESS(
                f"Erased {username} and {status['messages_deleted']} message(s) ({erasure_id})."
            )
        )

    def _follow(self, erasure_id: str, timeout: float) -> dict[str, Any]:
        """Show the deleted count growing until the erasure ends or `timeout` passes."""
        deadline = time.monotonic() + timeout
        with tqdm(unit="msg", desc="Erasing", disable=None) as bar:
            while True:
                status = erasure_get(erasure_id=erasure_id)
                if status is None:  # its record expired: nothing more to show
                    raise CommandError(f"erasure {erasure_id} is no longer known")
                bar.update(status["messages_deleted"] - bar.n)
                if status["status"] != "running" or time.monotonic() > deadline:
                    return status
                time.sleep(0.5)  # a progress bar's refresh, not a wait for a condition
