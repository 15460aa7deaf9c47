"""App config for the project's shared plumbing (queue broker, errors, health)."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared infrastructure used by the four service apps."""

    name = "core"

    def ready(self) -> None:
        """Register the readiness checks of the parts core owns."""
        from core.apis import database_check, queue_check, redis_check
        from core.readiness import readiness_check_register

        readiness_check_register("redis", redis_check)
        readiness_check_register("database", database_check)
        readiness_check_register("queue", queue_check)
