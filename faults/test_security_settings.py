"""Production settings refuse to start without strong secrets, and start with them.

Each case starts a fresh Python process, so none needs the private stack.
"""

import os
import subprocess

import pytest
from django.core.checks.security.base import (
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)

from config.secret_keys import (
    JWT_SIGNING_KEY_MIN_LENGTH,
    KEY_FOR_DEVELOPMENT,
    KEY_TOO_PLAIN,
    KEY_TOO_SHORT,
)
from faults.probes import record
from faults.stack import PYTHON, ROOT

REQUIRED = ("DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "DJANGO_ALLOWED_HOSTS")
VALUES = {
    "DJANGO_SECRET_KEY": "prod-secret-" + "0123456789abcdef" * 4,
    "JWT_SIGNING_KEY": "prod-jwt-" + "0123456789abcdef" * 4,
    "DJANGO_ALLOWED_HOSTS": "logger.example.com",
}
# The last line of the traceback: the real exception class, then its message.
REFUSED = "django.core.exceptions.ImproperlyConfigured: "
# django-environ's message for a variable that is not set at all.
NOT_SET = "Set the {name} environment variable"


@pytest.fixture(autouse=True)
def _ready() -> None:
    """Replaces conftest's: these tests start their own processes, not the private stack."""


def _run(code: str, settings: str | None, **env: str) -> subprocess.CompletedProcess:
    """Run `code` under `settings` (None: unset) with only `env` of the three variables."""
    drop = {*REQUIRED, "DJANGO_SETTINGS_MODULE"}
    base = {name: value for name, value in os.environ.items() if name not in drop}
    if settings is not None:
        base["DJANGO_SETTINGS_MODULE"] = settings
    return subprocess.run(
        [PYTHON, "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _start(**env: str) -> subprocess.CompletedProcess:
    """Set Django up with the production settings and only `env` of the three variables."""
    return _run("import django; django.setup()", "config.settings.production", **env)


def test_production_refuses_to_start_without_each_secret_and_starts_with_all() -> None:
    missing = {name: _start(**{k: v for k, v in VALUES.items() if k != name}) for name in REQUIRED}
    none_set = _start()
    started = _start(**VALUES)
    refused = {
        name: result.returncode != 0 and REFUSED + NOT_SET.format(name=name) in result.stderr
        for name, result in missing.items()
    }
    record(
        "security: production settings",
        refused_without=refused,
        refused_with_none=none_set.returncode != 0,
        starts_with_all=started.returncode == 0,
    )

    assert refused == dict.fromkeys(REQUIRED, True), {n: r.stderr for n, r in missing.items()}
    assert none_set.returncode != 0
    assert REFUSED + NOT_SET.format(name="DJANGO_SECRET_KEY") in none_set.stderr
    assert started.returncode == 0, started.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "DJANGO_SECRET_KEY",
            "",
            KEY_TOO_SHORT.format(name="DJANGO_SECRET_KEY", length=SECRET_KEY_MIN_LENGTH),
        ),
        (
            "DJANGO_SECRET_KEY",
            "0123456789abcdef" * 3,  # 48 characters
            KEY_TOO_SHORT.format(name="DJANGO_SECRET_KEY", length=SECRET_KEY_MIN_LENGTH),
        ),
        (
            "DJANGO_SECRET_KEY",
            "abcd" * 20,
            KEY_TOO_PLAIN.format(name="DJANGO_SECRET_KEY", count=SECRET_KEY_MIN_UNIQUE_CHARACTERS),
        ),
        (
            "DJANGO_SECRET_KEY",
            "django-insecure-" + "0123456789abcdef" * 4,
            KEY_FOR_DEVELOPMENT.format(name="DJANGO_SECRET_KEY", prefix="django-insecure-"),
        ),
        (
            "DJANGO_SECRET_KEY",
            "local-insecure-secret-key-do-not-use-in-production",  # local.py's default
            KEY_FOR_DEVELOPMENT.format(name="DJANGO_SECRET_KEY", prefix="local-insecure-"),
        ),
        (
            "JWT_SIGNING_KEY",
            "",
            KEY_TOO_SHORT.format(name="JWT_SIGNING_KEY", length=JWT_SIGNING_KEY_MIN_LENGTH),
        ),
        (
            "JWT_SIGNING_KEY",
            "0123456789abcdef" + "0123456789abcde",  # 31 characters
            KEY_TOO_SHORT.format(name="JWT_SIGNING_KEY", length=JWT_SIGNING_KEY_MIN_LENGTH),
        ),
        (
            "JWT_SIGNING_KEY",
            "local-insecure-jwt-key-do-not-use-in-production",  # local.py's default
            KEY_FOR_DEVELOPMENT.format(name="JWT_SIGNING_KEY", prefix="local-insecure-"),
        ),
        # Optional (without it /metrics answers 404), but a weak one is refused like the others.
        (
            "METRICS_TOKEN",
            "metrics-token",
            KEY_TOO_SHORT.format(name="METRICS_TOKEN", length=JWT_SIGNING_KEY_MIN_LENGTH),
        ),
        (
            "METRICS_TOKEN",
            "ab" * 20,
            KEY_TOO_PLAIN.format(name="METRICS_TOKEN", count=SECRET_KEY_MIN_UNIQUE_CHARACTERS),
        ),
    ],
)
def test_production_refuses_a_weak_secret(name: str, value: str, message: str) -> None:
    result = _start(**{**VALUES, name: value})
    assert result.returncode != 0
    assert REFUSED + message in result.stderr, result.stderr


@pytest.mark.parametrize("entry_point", ["config.wsgi", "config.asgi"])
def test_a_server_without_a_settings_module_gets_production(entry_point: str) -> None:
    refused = _run(f"import {entry_point}", settings=None)
    started = _run(
        f"import {entry_point}; from django.conf import settings; print(settings.SETTINGS_MODULE)",
        settings=None,
        **VALUES,
    )

    assert refused.returncode != 0
    assert REFUSED + NOT_SET.format(name="DJANGO_SECRET_KEY") in refused.stderr, refused.stderr
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "config.settings.production"
