"""ASGI entry point, for servers that speak ASGI."""

import os

from django.core.asgi import get_asgi_application

# A server started without DJANGO_SETTINGS_MODULE gets production, which refuses to start
# without real secrets, instead of local's DEBUG and public keys (manage.py keeps local).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_asgi_application()
