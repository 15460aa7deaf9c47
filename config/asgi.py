"""ASGI entry point: the live tail's process (uvicorn) serves it; the rest of the API is WSGI."""

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.asgi import get_asgi_application

# A server started without DJANGO_SETTINGS_MODULE gets production, which refuses to start
# without real secrets, instead of local's DEBUG and public keys (manage.py keeps local).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
_django = get_asgi_application()

# Django gives each request a thread of its own for its sync code (the middleware, DRF's
# authentication) and keeps it for as long as the response lasts: an open tail stream would
# hold one for hours, and a burst of reconnecting clients would start hundreds at once, which
# starve each other of the GIL until their Redis calls time out (503s). A tail request's sync
# part takes a few milliseconds, so one thread, taken in turn, serves them all; the streams
# themselves run on the event loop.
_SYNC_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asgi-sync")


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Django's ASGI application, with every request's sync code on the one shared thread."""
    async with ThreadSensitiveContext(executor=_SYNC_THREAD):
        await _django(scope, receive, send)
