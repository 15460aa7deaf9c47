"""`manage.py init_index`: create or update the index template, the alias and this month's index."""

from django.core.management.base import BaseCommand, CommandError
from elasticsearch import BadRequestError

from tracker.documents import index_alias, index_setup, indices_behind_alias
from tracker.management.commands._outage import elasticsearch_required


class Command(BaseCommand):
    """Create the template and this month's index behind the alias (idempotent)."""

    help = "Create or update the message index template, the read alias and this month's index."

    def handle(self, *args: object, **options: object) -> None:
        try:
            with elasticsearch_required():
                before = indices_behind_alias()
                name = index_setup()
        except BadRequestError as exc:
            # The core-only server has no _reindex: a conflicting mapping needs a new index.
            raise CommandError(
                f"An index under {index_alias()} has a mapping this version cannot update "
                f"({exc}); move its messages with migrate_index or delete that index, then run "
                "init_index again."
            ) from exc
        if name in before:
            message = (
                f"{len(before)} index(es) behind alias {index_alias()}, this month's {name}; "
                "template and mappings brought up to date."
            )
        else:
            message = f"Created index {name} behind alias {index_alias()}."
        self.stdout.write(self.style.SUCCESS(message))
