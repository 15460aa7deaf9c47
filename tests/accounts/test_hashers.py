"""Argon2id passwords: old PBKDF2 hashes verify and are upgraded in Redis at the next login."""

import statistics
import time
from collections.abc import Callable

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import check_password
from rest_framework.test import APIClient

from accounts.selectors import user_get_by_username, user_key
from accounts.services import user_create, user_delete, user_password_rehash
from core.redis import store

LOGIN = "/api/auth/login/"
PBKDF2 = "django.contrib.auth.hashers.PBKDF2PasswordHasher"
# The production order (config/settings/base.py); the test settings use MD5 for speed.
ARGON2ID_FIRST = ["accounts.hashers.Argon2idPasswordHasher", PBKDF2]
# OWASP's first recommended minimum: 19 MiB, 2 passes, 1 lane.
ARGON2ID_PREFIX = "argon2$argon2id$v=19$m=19456,t=2,p=1$"
TIMING_ROUNDS = 7


def _stored_hash(username: str) -> str:
    return user_get_by_username(username=username, include_password_hash=True)["password"]


def _login(user: dict, password: str | None = None):
    credentials = {"username": user["username"], "password": password or user["password"]}
    return APIClient().post(LOGIN, credentials, format="json")


@pytest.fixture
def pbkdf2_user(settings, make_user: Callable[..., dict]) -> dict:
    """A user whose password was hashed before Argon2id came first; Argon2id is first now."""
    settings.PASSWORD_HASHERS = [PBKDF2]
    user = make_user("oldhash01")
    settings.PASSWORD_HASHERS = ARGON2ID_FIRST
    return user


def test_a_pbkdf2_user_has_an_argon2id_hash_after_logging_in(pbkdf2_user: dict) -> None:
    assert _stored_hash("oldhash01").startswith("pbkdf2_sha256$")

    assert _login(pbkdf2_user).status_code == 200

    upgraded = _stored_hash("oldhash01")
    assert upgraded.startswith(ARGON2ID_PREFIX)
    assert check_password(pbkdf2_user["password"], upgraded)
    # Rewritten once: the next login verifies the new hash and keeps it.
    assert _login(pbkdf2_user).status_code == 200
    assert _stored_hash("oldhash01") == upgraded


def test_a_wrong_password_leaves_the_old_hash(pbkdf2_user: dict) -> None:
    before = _stored_hash("oldhash01")

    assert _login(pbkdf2_user, password="not-it-1").status_code == 401

    assert _stored_hash("oldhash01") == before


def test_new_passwords_are_hashed_with_argon2id(settings) -> None:
    settings.PASSWORD_HASHERS = ARGON2ID_FIRST

    user_create(username="alice01", password="secret1")

    assert _stored_hash("alice01").startswith(ARGON2ID_PREFIX)


def test_a_rehash_never_brings_back_a_deleted_user() -> None:
    user = user_create(username="alice01", password="secret1")
    stale = _stored_hash("alice01")
    user_delete(username="alice01")

    rehashed = user_password_rehash(user_id=user["user_id"], password="secret1", stale_hash=stale)

    assert rehashed is False
    assert store().exists(user_key(user["user_id"])) == 0


def test_a_rehash_keeps_a_hash_that_changed_meanwhile() -> None:
    user = user_create(username="alice01", password="secret1")
    stale = _stored_hash("alice01")
    store().hset(user_key(user["user_id"]), "password", "changed-meanwhile")

    rehashed = user_password_rehash(user_id=user["user_id"], password="secret1", stale_hash=stale)

    assert rehashed is False
    assert _stored_hash("alice01") == "changed-meanwhile"


def test_an_unknown_user_costs_the_same_hashing_as_a_wrong_password(settings) -> None:
    settings.PASSWORD_HASHERS = ARGON2ID_FIRST
    user_create(username="alice01", password="secret1")
    cpu_seconds: dict[str, list[float]] = {"alice01": [], "nobody01": []}

    # Alternated, so that drift in machine load falls on both alike; CPU time, not wall time.
    for _ in range(TIMING_ROUNDS):
        for username, spent in cpu_seconds.items():
            started = time.process_time()
            assert authenticate(None, username=username, password="not-it-1") is None
            spent.append(time.process_time() - started)

    wrong, unknown = (statistics.median(spent) for spent in cpu_seconds.values())
    assert max(wrong, unknown) / min(wrong, unknown) < 1.5, cpu_seconds
