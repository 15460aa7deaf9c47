"""`manage.py resumeerasure ERASURE_ID | --all | --list`: start failed erasures again once
their cause is fixed, or list them."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.selectors import erasure_get, erasures_failed
from accounts.services import erasure_resume

NOT_FAILED = "No failed erasure {erasure_id}: only a failed one can be resumed."
WHICH = "Give an ERASURE_ID, --all or --list."


class Command(BaseCommand):
    """Queues the erasure's task again; it goes on from what is left."""

    help = (
        "Resume the failed erasure ERASURE_ID (see GET /api/auth/erasures/ERASURE_ID/), or "
        "every failed one (--all); --list shows them with their reasons."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "erasure_id", nargs="?", help="its id; one that starts with '-' goes after '--'"
        )
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--all", action="store_true", help="resume every failed erasure")
        which.add_argument("--list", action="store_true", help="list the failed erasures")

    def handle(self, *args: Any, erasure_id: str | None, **options: Any) -> None:
        if (erasure_id is not None) == (options["all"] or options["list"]):
            raise CommandError(WHICH)
        if options["list"]:
            for failed_id in erasures_failed():
                record = erasure_get(erasure_id=failed_id) or {}
                self.stdout.write(f"{failed_id}  {record.get('finished')}  {record.get('reason')}")
            return
        if erasure_id is not None:
            if not erasure_resume(erasure_id=erasure_id):
                raise CommandError(NOT_FAILED.format(erasure_id=erasure_id))
            self.stdout.write(self.style.SUCCESS(f"Erasure {erasure_id} resumed."))
            return
        # One resumed meanwhile by someone else is no longer failed: skipped, not an error.
        resumed = [
            failed_id for failed_id in erasures_failed() if erasure_resume(erasure_id=failed_id)
        ]
        self.stdout.write(self.style.SUCCESS(f"{len(resumed)} failed erasure(s) resumed."))
