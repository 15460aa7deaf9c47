"""Production settings refuse to start without their secrets, and start with them."""

import os
import subprocess

import pytest

from faults.probes import record
from faults.stack import PYTHON, ROOT

REQUIRED = ("DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "DJANGO_ALLOWED_HOSTS")
VALUES = {
    "DJANGO_SECRET_KEY": "p" * 50,
    "JWT_SIGNING_KEY": "k" * 64,
    "DJANGO_ALLOWED_HOSTS": "logger.example.com",
}


def _start(**env: str) -> subprocess.CompletedProcess:
    """Set Django up with the production settings and only `env` of the three variables."""
    base = {name: value for name, value in os.environ.items() if name not in REQUIRED}
    return subprocess.run(
        [PYTHON, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _refused(result: subprocess.CompletedProcess, name: str) -> bool:
    """True when start-up failed and said which variable is missing."""
    return (
        result.returncode != 0 and "ImproperlyConfigured" in result.stderr and name in result.stderr
    )


def test_production_refuses_to_start_without_each_secret_and_starts_with_all() -> None:
    refused = {
        name: _refused(_start(**{k: v for k, v in VALUES.items() if k != name}), name)
        for name in REQUIRED
    }
    none_set = _start()
    started = _start(**VALUES)
    record(
        "security: production settings",
        refused_without=refused,
        refused_with_none=none_set.returncode != 0,
        starts_with_all=started.returncode == 0,
    )

    assert refused == dict.fromkeys(REQUIRED, True)
    assert none_set.returncode != 0
    assert "ImproperlyConfigured" in none_set.stderr
    assert started.returncode == 0, started.stderr


@pytest.mark.parametrize(
    "name",
    [
        "DJANGO_SECRET_KEY",
        "JWT_SIGNING_KEY",
    ],
)
def test_production_refuses_to_start_with_an_empty_secret(name: str) -> None:
    result = _start(**{**VALUES, name: ""})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
