"""Production settings: every secret must come from the environment."""

from .base import *
from .base import env

DEBUG = False
# No defaults: a missing secret stops the process at start-up with ImproperlyConfigured.
SECRET_KEY = env("DJANGO_SECRET_KEY")
JWT_SIGNING_KEY = env("JWT_SIGNING_KEY")
# An empty or short HS256 key can be guessed; RFC 7518 asks for at least 256 bits.
if len(JWT_SIGNING_KEY) < 32:
    raise ImproperlyConfigured("JWT_SIGNING_KEY must be at least 32 characters.")
SIMPLE_JWT["SIGNING_KEY"] = JWT_SIGNING_KEY
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
