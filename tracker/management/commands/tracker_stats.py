"""`manage.py tracker_stats`: print message counts by category and date as a table."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.exceptions import ValidationError

from core.contract import CATEGORIES
from core.serializers import validation_messages
from tracker.management.commands._outage import elasticsearch_required, iso_datetime
from tracker.scope import Actor
from tracker.selectors import INTERVALS, stats_by_category_and_date

_COLUMNS = (*CATEGORIES, "total")


class Command(BaseCommand):
    """Print the stats table, for every user or one (`--user-id`)."""

    help = "Print message counts by category per hour, day, week or month."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from", dest="date_from", type=iso_datetime, help="Start (default: 30 days ago)."
        )
        parser.add_argument("--to", dest="date_to", type=iso_datetime, help="End (default: now).")
        parser.add_argument("--interval", default="day", choices=list(INTERVALS))
        parser.add_argument("--tz", default="UTC", help="IANA time zone of the buckets.")
        parser.add_argument("--user-id", dest="user_id", help="Only this user's messages.")

    def handle(self, *args: object, **options: Any) -> None:
        # An operator at the console sees everyone's messages, as an admin does.
        operator = Actor(user_id=None, role="admin")
        try:
            with elasticsearch_required():
                stats = stats_by_category_and_date(
                    actor=operator,
                    date_from=options["date_from"],
                    date_to=options["date_to"],
                    interval=options["interval"],
                    tz=options["tz"],
                    user_id=options["user_id"],
                )
        except ValidationError as exc:
            raise CommandError("; ".join(validation_messages(exc.detail))) from exc
        self.stdout.write(
            f"{stats['interval']} buckets in {stats['tz']} from {stats['from']} to {stats['to']}"
        )
        width = max((len(bucket["date"]) for bucket in stats["buckets"]), default=10)
        header = f"{'date':<{width}}" + "".join(f"{name:>9}" for name in _COLUMNS)
        self.stdout.write(header)
        for row in [*stats["buckets"], {"date": "total", **stats["totals"]}]:
            self.stdout.write(f"{row['date']:<{width}}" + "".join(f"{row[n]:>9}" for n in _COLUMNS))
