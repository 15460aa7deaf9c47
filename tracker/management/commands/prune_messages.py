"""`manage.py prune_messages [--dry-run]`: drop the month indices past TRACKER_RETENTION_DAYS."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from tracker.management.commands._outage import elasticsearch_required
from tracker.retention import messages_prune


class Command(BaseCommand):
    """Deletes whole months of messages that lie entirely past retention."""

    help = "Drop the month indices that lie entirely past TRACKER_RETENTION_DAYS (0 keeps all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Name them, delete nothing.")

    def handle(self, *args: object, **options: Any) -> None:
        days = settings.TRACKER_RETENTION_DAYS
        if days <= 0:
            self.stdout.write("TRACKER_RETENTION_DAYS is 0: messages are kept for ever.")
            return
        with elasticsearch_required():
            expired = messages_prune(dry_run=options["dry_run"])
        verb = "Would drop" if options["dry_run"] else "Dropped"
        names = ", ".join(expired) if expired else "nothing"
        self.stdout.write(f"{verb} {len(expired)} month(s) past {days} days: {names}.")
