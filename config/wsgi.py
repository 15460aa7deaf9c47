"""WSGI entry point for gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

# A server started without DJANGO_SETTINGS_MODULE gets production, which refuses to start
# without real secrets, instead of local's DEBUG and public keys (manage.py keeps local).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()

# Imported once Django is set up (its apps are loaded above).
from django.urls import get_resolver  # noqa: E402

from core.heap import heap_freeze  # noqa: E402

# Every view loads (the URLconf imports them) before the heap is frozen.
get_resolver().url_patterns  # noqa: B018
heap_freeze()
