"""`manage.py resumeerasure ERASURE_ID`: start a failed erasure again once its cause is fixed."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import erasure_resume

NOT_FAILED = "No failed erasure {erasure_id}: only a failed one can be resumed."


class Command(BaseCommand):
    """Queues the erasure's task again; it goes on from what is left."""

    help = "Resume the failed erasure ERASURE_ID (see GET /api/auth/erasures/ERASURE_ID/)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("erasure_id")

    def handle(self, *args: Any, erasure_id: str, **options: Any) -> None:
        if not erasure_resume(erasure_id=erasure_id):
            raise CommandError(NOT_FAILED.format(erasure_id=erasure_id))
        self.stdout.write(self.style.SUCCESS(f"Erasure {erasure_id} resumed."))
