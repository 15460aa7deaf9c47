"""`manage.py syslog_listen`: the syslog listener process (RFC 5424 and 3164, TCP and UDP).

Its lines belong to the owner of the API key SYSLOG_API_KEY, which needs the push scope.
Without a usable key it does not start, and says why; `--check` says only that, for
scripts/stack.sh to decide whether to start it.
"""

import asyncio
import logging
from typing import Any

import redis.exceptions
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pusher.syslog_listener import SyslogKeyRefused, SyslogListener, syslog_key_owner

logger = logging.getLogger("pusher.syslog_listener")

CANNOT_LISTEN = "The syslog listener cannot listen on {host}:{port}: {error}"
REDIS_DOWN = "The syslog listener cannot check SYSLOG_API_KEY: Redis is unavailable ({error})."


class Command(BaseCommand):
    """Runs the syslog listener until SIGTERM or Ctrl-C."""

    help = "Listen for syslog over TCP and UDP and push each line into the pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.SYSLOG_HOST)
        parser.add_argument("--port", type=int, default=settings.SYSLOG_PORT)
        parser.add_argument(
            "--check", action="store_true", help="Only check SYSLOG_API_KEY, then exit."
        )

    def _refuse(self, message: str) -> CommandError:
        logger.error(message)
        return CommandError(message)

    def handle(self, *args: object, **options: Any) -> None:
        key = settings.SYSLOG_API_KEY
        try:
            user_id = syslog_key_owner(key=key)
        except SyslogKeyRefused as exc:
            raise self._refuse(str(exc)) from exc
        except redis.exceptions.RedisError as exc:
            raise self._refuse(REDIS_DOWN.format(error=exc)) from exc
        if options["check"]:
            self.stdout.write(f"SYSLOG_API_KEY is usable: syslog lines belong to user {user_id}.")
            return
        host, port = options["host"], options["port"]
        listener = SyslogListener(host=host, port=port, key=key, user_id=user_id)
        try:
            asyncio.run(listener.serve())
        except SyslogKeyRefused as exc:
            raise self._refuse(str(exc)) from exc
        except OSError as exc:
            raise self._refuse(CANNOT_LISTEN.format(host=host, port=port, error=exc)) from exc
