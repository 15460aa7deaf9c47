"""`manage.py init_index`: create or update the message index behind its alias."""

import elasticsearch
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tracker.documents import index_alias, index_current, index_setup


class Command(BaseCommand):
    """Create the index template, the versioned index and the alias (idempotent)."""

    help = "Create or update the message index template, the versioned index and its alias."

    def handle(self, *args: object, **options: object) -> None:
        try:
            before = index_current()
            name = index_setup()
        except (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout) as exc:
            raise CommandError(
                f"Elasticsearch is unavailable at {settings.ELASTICSEARCH_URL}: {exc}"
            ) from exc
        if before is None:
            self.stdout.write(
                self.style.SUCCESS(f"Created index {name} behind alias {index_alias()}.")
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Index {name} already behind alias {index_alias()}; "
                    "template and mapping brought up to date."
                )
            )
