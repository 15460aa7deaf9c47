"""`manage.py export_messages FILE`: every matching message to an NDJSON or CSV file.

The same export as GET /api/tracker/messages/export/ (search's filters, newest first, no cap,
CSV escaped against formula injection), as an operator who sees everyone's messages.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.exceptions import ValidationError
from tqdm import tqdm

from core.contract import CATEGORIES
from core.serializers import validation_messages
from tracker.exports import FORMATS, NDJSON, export_lines
from tracker.management.commands._outage import elasticsearch_required, iso_datetime
from tracker.scope import Actor
from tracker.selectors import messages_export

_FILTERS = (
    *("q", "category", "date_from", "date_to", "user_id"),
    *("service", "severity_min", "attribute"),
)


class Command(BaseCommand):
    """Writes the export to a file, with a progress bar."""

    help = "Export every matching message to FILE as NDJSON (default) or CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="Where to write ('-' for stdout).")
        parser.add_argument("--format", choices=FORMATS, default=NDJSON)
        parser.add_argument("--q", default="", help="Substring of the message.")
        parser.add_argument("--category", choices=CATEGORIES)
        parser.add_argument("--from", dest="date_from", type=iso_datetime)
        parser.add_argument("--to", dest="date_to", type=iso_datetime)
        parser.add_argument("--user-id", dest="user_id", help="Only this user's messages.")
        parser.add_argument("--service")
        parser.add_argument("--severity-min", dest="severity_min", type=int)
        parser.add_argument("--attribute", help='"key:value"')

    def handle(self, *args: object, **options: Any) -> None:
        filters = {name: options[name] for name in _FILTERS}
        try:
            with elasticsearch_required():
                count, documents = messages_export(
                    actor=Actor(user_id=None, role="admin"), **filters
                )
                written = self._write(options["file"], options["format"], count, documents)
        except ValidationError as exc:
            raise CommandError("; ".join(validation_messages(exc.detail))) from exc
        self.stderr.write(f"Exported {written} message(s) to {options['file']}.")

    def _write(self, path: Path, fmt: str, count: int, documents: Any) -> int:
        written = 0

        def counted() -> Any:
            nonlocal written
            for document in documents:
                written += 1
                bar.update()
                yield document

        # The bar goes to stderr, so `-` can pipe the export itself.
        with tqdm(total=count, unit="msg", desc="Exporting", disable=None) as bar:
            if str(path) == "-":
                for line in export_lines(counted(), fmt=fmt):
                    self.stdout.write(line.decode(), ending="")
            else:
                with path.open("wb") as handle:
                    for line in export_lines(counted(), fmt=fmt):
                        handle.write(line)
        return written
