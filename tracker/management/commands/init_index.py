"""`manage.py init_index`: create or update the message index behind its alias."""

from django.core.management.base import BaseCommand

from tracker.documents import index_alias, index_current, index_setup
from tracker.management.commands._outage import elasticsearch_required


class Command(BaseCommand):
    """Create the index template, the versioned index and the alias (idempotent)."""

    help = "Create or update the message index template, the versioned index and its alias."

    def handle(self, *args: object, **options: object) -> None:
        with elasticsearch_required():
            before = index_current()
            name = index_setup()
        if before is None:
            message = f"Created index {name} behind alias {index_alias()}."
        else:
            message = (
                f"Index {name} already behind alias {index_alias()}; "
                "template and mapping brought up to date."
            )
        self.stdout.write(self.style.SUCCESS(message))
