"""Production settings: every secret must come from the environment, and be strong."""

from config.secret_keys import jwt_signing_key_check, metrics_token_check, secret_key_check

from .base import *  # noqa: F403
from .base import SIMPLE_JWT, env

DEBUG = False
# No defaults: a missing or weak secret stops the process at start-up with ImproperlyConfigured.
SECRET_KEY = secret_key_check(key=env("DJANGO_SECRET_KEY"))
JWT_SIGNING_KEY = jwt_signing_key_check(key=env("JWT_SIGNING_KEY"))
SIMPLE_JWT["SIGNING_KEY"] = JWT_SIGNING_KEY
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
# /metrics is served only with a token here: without METRICS_TOKEN it answers 404.
METRICS_TOKEN = metrics_token_check(key=env("METRICS_TOKEN", default=""))
METRICS_TOKEN_REQUIRED = True
