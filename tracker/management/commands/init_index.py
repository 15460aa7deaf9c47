"""`manage.py init_index`: create or update the message index behind its alias."""

from django.core.management.base import BaseCommand, CommandError
from elasticsearch import BadRequestError

from tracker.documents import index_alias, index_current, index_setup
from tracker.management.commands._outage import elasticsearch_required


class Command(BaseCommand):
    """Create the index template, the versioned index and the alias (idempotent)."""

    help = "Create or update the message index template, the versioned index and its alias."

    def handle(self, *args: object, **options: object) -> None:
        try:
            with elasticsearch_required():
                before = index_current()
                name = index_setup()
        except BadRequestError as exc:
            # The core-only server has no _reindex: a conflicting mapping needs a new index.
            raise CommandError(
                f"The live index under {index_alias()} has a mapping this version cannot "
                f"update ({exc}); delete that index and run init_index again."
            ) from exc
        if before is None:
            message = f"Created index {name} behind alias {index_alias()}."
        else:
            message = (
                f"Index {name} already behind alias {index_alias()}; "
                "template and mapping brought up to date."
            )
        self.stdout.write(self.style.SUCCESS(message))
