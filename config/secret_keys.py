"""Strength rules for the keys production signs with: a weak one stops start-up."""

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

# RFC 7518 asks an HS256 key for at least 256 bits.
JWT_SIGNING_KEY_MIN_LENGTH = 32
# Keys anyone can read: Django's startproject ones and local.py's defaults.
DEVELOPMENT_KEY_PREFIXES = (SECRET_KEY_INSECURE_PREFIX, "local-insecure-")

KEY_TOO_SHORT = "{name} must be at least {length} characters."
KEY_TOO_PLAIN = "{name} must hold at least {count} different characters."
KEY_FOR_DEVELOPMENT = "{name} must not start with {prefix!r}: that is a development key."
HOW_TO_MAKE_ONE = "Make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"


def _key_check(*, name: str, key: str, min_length: int) -> str:
    """Return `key`, read from variable `name`; raise ImproperlyConfigured if it is weak."""
    development = [prefix for prefix in DEVELOPMENT_KEY_PREFIXES if key.startswith(prefix)]
    if len(key) < min_length:
        problem = KEY_TOO_SHORT.format(name=name, length=min_length)
    elif len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        problem = KEY_TOO_PLAIN.format(name=name, count=SECRET_KEY_MIN_UNIQUE_CHARACTERS)
    elif development:
        problem = KEY_FOR_DEVELOPMENT.format(name=name, prefix=development[0])
    else:
        return key
    raise ImproperlyConfigured(f"{problem} {HOW_TO_MAKE_ONE}")


def secret_key_check(*, key: str) -> str:
    """Return DJANGO_SECRET_KEY if it passes Django's own rule (check --deploy's W009)."""
    # It also signs the queued django-q2 tasks: whoever guesses it can forge work for the queue.
    return _key_check(name="DJANGO_SECRET_KEY", key=key, min_length=SECRET_KEY_MIN_LENGTH)


def jwt_signing_key_check(*, key: str) -> str:
    """Return JWT_SIGNING_KEY if it is long and varied enough for HS256, not a development key."""
    return _key_check(name="JWT_SIGNING_KEY", key=key, min_length=JWT_SIGNING_KEY_MIN_LENGTH)


def metrics_token_check(*, key: str) -> str:
    """Return METRICS_TOKEN: empty (then /metrics is not served) or as strong as the JWT key."""
    if not key:
        return key
    return _key_check(name="METRICS_TOKEN", key=key, min_length=JWT_SIGNING_KEY_MIN_LENGTH)
