"""`manage.py deadletters`: list, count, show, replay and purge what the inboxes set aside.

Each inbox keeps the items it could never handle in its dead letter, with the errors, the time
and the attempt count. Replaying puts them back through the drain, which checks them against
the message contract again.
"""

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.queue import inbox

ACTIONS = ("count", "list", "show", "replay", "purge")
NO_SUCH_ENTRY = "No dead-letter entry {position} in inbox {inbox}."
PURGE_NEEDS_YES = "purge deletes the items for good: add --yes."


class Command(BaseCommand):
    """Inspects and handles the inboxes' dead letters."""

    help = "List, count, show, replay or purge the inboxes' dead letters."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument(
            "--inbox",
            choices=list(settings.QUEUE_INBOXES),
            help="One inbox (default: all; show, replay and purge need one).",
        )
        parser.add_argument("--position", type=int, default=0, help="show: the entry's index.")
        parser.add_argument(
            "--limit", type=int, help="list: at most this many; replay: the first N."
        )
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")
        parser.add_argument("--yes", action="store_true", help="purge: confirm.")

    def handle(self, *args: object, **options: Any) -> None:
        action, name = options["action"], options["inbox"]
        if action in ("show", "replay", "purge") and name is None:
            raise CommandError(f"{action} needs --inbox.")
        names = [name] if name else list(settings.QUEUE_INBOXES)
        result: Any
        if action == "count":
            result = {box: inbox(box).dead_letters() for box in names}
        elif action == "list":
            limit = options["limit"] or 100
            result = {box: inbox(box).dead_entries(count=limit) for box in names}
        elif action == "show":
            entries = inbox(name).dead_entries(start=options["position"], count=1)
            if not entries:
                raise CommandError(NO_SUCH_ENTRY.format(position=options["position"], inbox=name))
            result = entries[0]
        elif action == "replay":
            result = {"replayed": inbox(name).dead_replay(count=options["limit"])}
        else:
            if not options["yes"]:
                raise CommandError(PURGE_NEEDS_YES)
            result = {"purged": inbox(name).dead_purge()}
        self._write(action, result, as_json=options["json"])

    def _write(self, action: str, result: Any, *, as_json: bool) -> None:
        if as_json or action == "show":
            self.stdout.write(json.dumps(result, indent=None if as_json else 2))
        elif action == "count":
            for box, count in result.items():
                self.stdout.write(f"{box}: {count}")
        elif action == "list":
            for box, entries in result.items():
                self.stdout.write(f"{box}: {len(entries)} shown")
                for position, entry in enumerate(entries):
                    errors = "; ".join(entry["errors"])
                    self.stdout.write(
                        f"  [{position}] {entry['at']} x{entry['attempts']}: {errors}"
                    )
        else:
            ((verb, count),) = result.items()
            self.stdout.write(f"{verb.capitalize()} {count} item(s).")
