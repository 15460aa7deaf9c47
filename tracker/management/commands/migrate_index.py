"""`manage.py migrate_index`: move the single pre-month index into month indices, then drop it.

Safe to re-run, and safe while pushes continue: new messages already go to their month, a
copy never replaces what a month holds, and the old index is dropped only once every one of
its messages has been copied.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.search import es_client
from tracker.documents import index_alias, index_month, index_setup, indices_behind_alias
from tracker.management.commands._outage import elasticsearch_required
from tracker.retention import index_migrate


class Command(BaseCommand):
    """Moves messages from an index that is not a month's into their months."""

    help = "Move the messages of the old single index into month indices, then drop it."

    def handle(self, *args: object, **options: Any) -> None:
        with elasticsearch_required():
            index_setup()  # the month template first: copies create their months from it
            old = [name for name in indices_behind_alias() if index_month(name) is None]
            if not old:
                self.stdout.write(f"Nothing to migrate: {index_alias()} holds month indices only.")
                return
            total = sum(es_client().count(index=name)["count"] for name in old)
            with tqdm(total=total, unit="msg", desc="Migrating", disable=None) as bar:
                try:
                    moved = index_migrate(progress=bar.update)
                except RuntimeError as exc:
                    raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Copied {moved['copied']} message(s) ({moved['already_there']} already in "
                f"their month); dropped {', '.join(moved['indices_removed'])}."
            )
        )
