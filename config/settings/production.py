"""Production settings: every secret must come from the environment."""

from .base import *
from .base import env

DEBUG = False
# No defaults: a missing secret stops the process at start-up with ImproperlyConfigured.
SECRET_KEY = env("DJANGO_SECRET_KEY")
JWT_SIGNING_KEY = env("JWT_SIGNING_KEY")
SIMPLE_JWT["SIGNING_KEY"] = JWT_SIGNING_KEY
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
