"""`manage.py import_messages FILE`: track messages from a JSON Lines or CSV file.

Rows go through the same validation and indexing as the bulk endpoint, 1,000 at a time, and
every refused row is reported by its line number.
"""

import csv
import json
import uuid
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from core.contract import BULK_MAX_ITEMS
from tracker.management.commands._outage import elasticsearch_required
from tracker.scope import Actor
from tracker.serializers import messages_input_check
from tracker.services import messages_bulk

JSONL, CSV = "jsonl", "csv"
_SUFFIXES = {".jsonl": JSONL, ".ndjson": JSONL, ".json": JSONL, ".csv": CSV}
# The summary names this many failures in detail; the rest are counted.
_DETAILS_SHOWN = 100

# A parsed row: its line number, the item (None when unreadable), and the reason it is not.
Row = tuple[int, Any, str | None]


def _detect_format(path: Path) -> str:
    """By extension, else by the first non-blank character: `{` is JSON Lines."""
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    with path.open(encoding="utf-8-sig") as handle:
        for line in handle:
            if line.strip():
                return JSONL if line.lstrip().startswith("{") else CSV
    return JSONL


def _jsonl_rows(handle: TextIO) -> Iterator[Row]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), None
        except json.JSONDecodeError as exc:
            yield number, None, f"invalid JSON: {exc.msg} (column {exc.colno})"


def _csv_rows(handle: TextIO) -> Iterator[Row]:
    reader = csv.DictReader(handle)
    for row in reader:
        if None in row:
            yield reader.line_num, None, "more cells than there are columns"
            continue
        # An empty cell means "not given", so the field's default applies.
        yield reader.line_num, {key: value for key, value in row.items() if value}, None


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


class Command(BaseCommand):
    """Import messages through the API's validation and bulk indexing."""

    help = "Track messages from a JSON Lines or CSV file (fields as for POST /messages/)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="A .jsonl or .csv file.")
        parser.add_argument(
            "--user-id", dest="user_id", help="Owner of the rows that have no user_id."
        )
        parser.add_argument("--format", choices=[JSONL, CSV], help="Default: detected.")

    def handle(self, *args: object, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        user_id = options["user_id"]
        if user_id is not None:
            try:
                user_id = str(uuid.UUID(user_id))
            except ValueError as exc:
                raise CommandError(f"--user-id is not a UUID: {user_id}") from exc
        fmt = options["format"] or _detect_format(path)
        # The importer may set any owner, as an admin may; rows without one get --user-id.
        actor = Actor(user_id=user_id, role="admin")
        indexed, failures = 0, []
        reader = _jsonl_rows if fmt == JSONL else _csv_rows
        with (
            path.open(encoding="utf-8-sig", newline="") as handle,
            tqdm(total=_count_lines(path), unit="line", disable=None) as progress,
            elasticsearch_required(),
        ):
            rows = reader(handle)
            while batch := list(islice(rows, BULK_MAX_ITEMS)):
                batch_indexed, batch_failures = self._import_batch(batch, actor)
                indexed += batch_indexed
                failures += batch_failures
                progress.update(batch[-1][0] - progress.n)
        self._summarize(indexed, failures)

    @staticmethod
    def _import_batch(batch: list[Row], actor: Actor) -> tuple[int, list[tuple[int, list[str]]]]:
        """Index the readable rows of one batch; return the count and the failed lines."""
        failures = [(line, [error]) for line, _, error in batch if error]
        readable = [(line, item) for line, item, error in batch if not error]
        checked = messages_input_check([item for _, item in readable])
        report = messages_bulk(items=checked, actor=actor)
        failures += [
            (readable[result["index"]][0], result["errors"])
            for result in report["items"]
            if result["status"] != "indexed"
        ]
        return report["indexed"], failures

    def _summarize(self, indexed: int, failures: list[tuple[int, list[str]]]) -> None:
        failures.sort()
        self.stdout.write(f"Indexed {indexed} message(s); {len(failures)} row(s) failed.")
        if not failures:
            return
        lines = ", ".join(str(line) for line, _ in failures[:_DETAILS_SHOWN])
        more = len(failures) - _DETAILS_SHOWN
        self.stdout.write(f"Failed lines: {lines}" + (f" and {more} more" if more > 0 else ""))
        for line, errors in failures[:_DETAILS_SHOWN]:
            self.stdout.write(f"  line {line}: {'; '.join(errors)}")
