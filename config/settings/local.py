"""Settings for a developer's machine: DEBUG on, throwaway secrets."""

from .base import *  # noqa: F403
from .base import SIMPLE_JWT, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-insecure-secret-key-do-not-use-in-production")
JWT_SIGNING_KEY = env("JWT_SIGNING_KEY", default="local-insecure-jwt-key-do-not-use-in-production")
SIMPLE_JWT["SIGNING_KEY"] = JWT_SIGNING_KEY
