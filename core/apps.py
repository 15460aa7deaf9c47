"""App config for the project's shared plumbing (queue broker, errors, health)."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared infrastructure used by the four service apps."""

    name = "core"

    def ready(self) -> None:
        """Register the readiness checks of the parts core owns, and freeze each queue worker's
        heap when it starts (core.heap)."""
        from django_q.signals import post_spawn

        from core.apis import database_check, queue_check, redis_check
        from core.heap import heap_freeze_on_spawn
        from core.readiness import readiness_check_register

        post_spawn.connect(heap_freeze_on_spawn, dispatch_uid="core.heap")

        readiness_check_register("redis", redis_check)
        readiness_check_register("database", database_check)
        readiness_check_register("queue", queue_check)
