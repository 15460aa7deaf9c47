"""Services, selectors and the auth backend of accounts, against the real Redis."""

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import redis
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import check_password
from rest_framework.exceptions import ValidationError

from accounts import services
from accounts.authentication import UncheckedClaims
from accounts.exceptions import (
    PASSWORD_INVALID,
    ROLE_INVALID,
    USERNAME_INVALID,
    TokenNotYours,
    TokenRevoked,
    TokenUserGone,
    UsernameTaken,
)
from accounts.selectors import (
    token_family_revocation_key,
    token_revocation_key,
    token_revoked,
    user_get,
    user_get_by_username,
    user_key,
    username_key,
    users_list,
)
from accounts.services import (
    token_pair_issue,
    token_refresh,
    tokens_revoke,
    user_create,
    user_delete,
    user_login,
)
from accounts.tokens import ACCESS, REFRESH, RedisTokenUser, token_decode
from core.redis import store
from tests.accounts.support import RACE_NAMES, run_together

PASSWORD = "pa55word"


def test_user_create_stores_a_hashed_record() -> None:
    user = user_create(username="Alice01", password=PASSWORD)

    assert set(user) == {"user_id", "username", "role", "created_time"}
    assert uuid.UUID(user["user_id"]).version == 4
    assert user["username"] == "Alice01"
    assert user["role"] == "user"
    assert datetime.fromisoformat(user["created_time"]).utcoffset() == UTC.utcoffset(None)
    record = store().hgetall(user_key(user["user_id"]))
    assert record == {**user, "password": record["password"]}
    assert record["password"] != PASSWORD
    assert check_password(PASSWORD, record["password"])
    assert store().get(username_key("alice01")) == user["user_id"]


@pytest.mark.parametrize("username", ["abcde", "A1b2C3d4E5f6G7h"])
def test_username_length_limits_accepted(username: str) -> None:
    assert user_create(username=username, password=PASSWORD)["username"] == username


@pytest.mark.parametrize(
    "username",
    ["abcd", "A1b2C3d4E5f6G7h8", "alice_01", "alice 01", "alicé01", "alice01\n", "x" * 10_000],
)
def test_username_rules_rejected(username: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        user_create(username=username, password=PASSWORD)
    assert excinfo.value.detail == {"username": [USERNAME_INVALID]}
    assert store().dbsize() == 0


@pytest.mark.parametrize("password", ["123456", "123456789012"])
def test_password_length_limits_accepted(password: str) -> None:
    user = user_create(username="alice01", password=password)

    assert authenticate(None, username="alice01", password=password).user_id == user["user_id"]


@pytest.mark.parametrize("password", ["12345", "1234567890123", "p" * 10_000])
def test_password_rules_rejected(password: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        user_create(username="alice01", password=password)
    assert excinfo.value.detail == {"password": [PASSWORD_INVALID]}


def test_invalid_role_rejected() -> None:
    with pytest.raises(ValidationError) as excinfo:
        user_create(username="alice01", password=PASSWORD, role="root")
    assert excinfo.value.detail == {"role": [ROLE_INVALID]}


def test_duplicate_username_in_another_case_is_taken() -> None:
    user_create(username="alice01", password=PASSWORD)
    with pytest.raises(UsernameTaken):
        user_create(username="ALICE01", password=PASSWORD)
    assert len(users_list()) == 1


def test_concurrent_registrations_of_one_name_let_exactly_one_win() -> None:
    results = run_together(
        len(RACE_NAMES), lambda i: user_create(username=RACE_NAMES[i], password=PASSWORD)
    )

    winners = [result for result in results if isinstance(result, dict)]
    assert len(winners) == 1
    assert all(isinstance(result, UsernameTaken) for result in results if result not in winners)
    assert [user["user_id"] for user in users_list()] == [winners[0]["user_id"]]
    assert store().get(username_key("racer01")) == winners[0]["user_id"]


def test_failed_record_write_releases_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = uuid.uuid4()
    # Make the record's key hold a string, so the real Redis refuses the HSET (WRONGTYPE).
    store().set(user_key(str(fixed)), "occupied")
    monkeypatch.setattr(services, "uuid", SimpleNamespace(uuid4=lambda: fixed))

    with pytest.raises(redis.ResponseError):
        user_create(username="alice01", password=PASSWORD)

    assert store().get(username_key("alice01")) is None
    monkeypatch.undo()
    assert user_create(username="alice01", password=PASSWORD)["username"] == "alice01"


def test_user_delete_frees_the_name() -> None:
    user = user_create(username="alice01", password=PASSWORD)

    assert user_delete(username="ALICE01") is not None
    assert user_delete(username="alice01") is None
    assert store().exists(user_key(user["user_id"]), username_key("alice01")) == 0
    assert user_create(username="alice01", password=PASSWORD)["user_id"] != user["user_id"]


def test_selectors_hide_the_password_hash_unless_asked() -> None:
    user = user_create(username="alice01", password=PASSWORD)

    assert user_get(user_id=user["user_id"]) == user
    assert user_get_by_username(username="ALICE01") == user
    with_hash = user_get_by_username(username="alice01", include_password_hash=True)
    assert check_password(PASSWORD, with_hash["password"])
    assert user_get(user_id=str(uuid.uuid4())) is None
    assert user_get_by_username(username="nobody1") is None


def test_users_list_returns_everyone_oldest_first() -> None:
    created = [user_create(username=f"user{i:04d}", password=PASSWORD) for i in range(3)]
    store().set("pusher:count:someone", 5)  # other keys in the store are not users

    assert users_list() == created


def test_backend_authenticates_against_redis() -> None:
    user = user_create(username="alice01", password=PASSWORD, role="admin")

    found = authenticate(None, username="Alice01", password=PASSWORD)

    assert isinstance(found, RedisTokenUser)
    assert (found.user_id, found.id, found.username, found.role) == (
        user["user_id"],
        user["user_id"],
        "alice01",
        "admin",
    )
    assert found.is_admin is True
    assert authenticate(None, username="alice01", password="wrong-pw") is None
    assert authenticate(None, username="nobody1", password=PASSWORD) is None
    assert authenticate(None, username="alice01", password="p" * 10_000) is None


def test_token_pair_carries_the_user_claims() -> None:
    pair = token_pair_issue(user_id="u-1", username="alice01", role="user")

    access = token_decode(raw=pair["access"], token_type=ACCESS)
    refresh = token_decode(raw=pair["refresh"], token_type=REFRESH)
    for claims in (access, refresh):
        assert {key: claims[key] for key in ("user_id", "username", "role")} == {
            "user_id": "u-1",
            "username": "alice01",
            "role": "user",
        }
    assert access["jti"] != refresh["jti"]
    assert access["exp"] < refresh["exp"]
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900


def test_refresh_is_single_use_even_under_a_race() -> None:
    user = user_create(username="alice01", password=PASSWORD)
    refresh = token_pair_issue(user_id=user["user_id"], username="alice01", role="user")["refresh"]

    results = run_together(8, lambda _: token_refresh(refresh=refresh))

    [winner] = [result for result in results if isinstance(result, dict)]
    assert all(isinstance(result, (dict, TokenRevoked)) for result in results)
    claims = token_decode(raw=refresh, token_type=REFRESH)
    assert token_revoked(claims=claims)
    assert (
        0 < store().ttl(token_revocation_key(user_id=claims["user_id"], jti=claims["jti"])) <= 86400
    )
    # The losers presented a used token: reuse, so the winner's new pair is revoked with its
    # family. Clients must not refresh concurrently with one token (the dashboard does not).
    new_access = token_decode(raw=winner["access"], token_type=ACCESS)
    assert token_revoked(claims=new_access)


def test_each_login_starts_a_token_family_that_refreshes_keep() -> None:
    user = user_create(username="alice01", password=PASSWORD)
    first, second = [user_login(username="alice01", password=PASSWORD) for _ in range(2)]
    rotated = token_refresh(refresh=first["refresh"])

    def family(pair: dict) -> set[str]:
        return {token_decode(raw=pair[kind], token_type=kind)["fam"] for kind in (ACCESS, REFRESH)}

    assert family(first) == family(rotated)
    assert len(family(first)) == len(family(second)) == 1
    assert family(first) != family(second)
    assert first["user_id"] == user["user_id"]


def test_a_reused_refresh_token_revokes_its_family_until_the_family_expires() -> None:
    user = user_create(username="alice01", password=PASSWORD)
    pair = token_pair_issue(user_id=user["user_id"], username="alice01", role="user")
    token_refresh(refresh=pair["refresh"])

    with pytest.raises(TokenRevoked):
        token_refresh(refresh=pair["refresh"])

    access = UncheckedClaims(token_decode(raw=pair["access"], token_type=ACCESS))
    # The push's user step checks the family's key besides the token's own (UncheckedClaims).
    own, family, _user = access.revocation_keys
    assert family == token_family_revocation_key(user_id=access["user_id"], family=access["fam"])
    assert 86400 - 5 < store().ttl(family) <= 86400
    assert not store().exists(own)  # the token itself was never revoked
    assert token_revoked(claims=access)


def test_refresh_for_a_deleted_user_is_refused() -> None:
    user = user_create(username="alice01", password=PASSWORD)
    refresh = token_pair_issue(user_id=user["user_id"], username="alice01", role="user")["refresh"]
    user_delete(username="alice01")

    with pytest.raises(TokenUserGone):
        token_refresh(refresh=refresh)


def test_logout_refuses_another_users_refresh_and_revokes_nothing() -> None:
    mine = token_pair_issue(user_id="u-1", username="alice01", role="user")
    theirs = token_pair_issue(user_id="u-2", username="bobby01", role="user")
    access_claims = token_decode(raw=mine["access"], token_type=ACCESS)

    with pytest.raises(TokenNotYours):
        tokens_revoke(access_claims=access_claims, refresh=theirs["refresh"])

    assert store().dbsize() == 0


def test_logout_revocations_expire_with_their_tokens() -> None:
    pair = token_pair_issue(user_id="u-1", username="alice01", role="user")
    access = token_decode(raw=pair["access"], token_type=ACCESS)
    refresh = token_decode(raw=pair["refresh"], token_type=REFRESH)

    tokens_revoke(access_claims=access, refresh=pair["refresh"])

    assert (
        0 < store().ttl(token_revocation_key(user_id=access["user_id"], jti=access["jti"])) <= 900
    )
    assert (
        900
        < store().ttl(token_revocation_key(user_id=refresh["user_id"], jti=refresh["jti"]))
        <= 86400
    )
