"""The accounts HTTP API: register, login, refresh, logout, me, token errors and throttles."""

import base64
import json
import logging
import time
from collections.abc import Callable

import jwt
import pytest
from django.conf import settings
from django_redis import get_redis_connection
from rest_framework.exceptions import NotAuthenticated
from rest_framework.test import APIClient

from accounts.exceptions import (
    INVALID_CREDENTIALS,
    PASSWORD_INVALID,
    TOKEN_BAD_SIGNATURE,
    TOKEN_EXPIRED,
    TOKEN_MALFORMED,
    TOKEN_NOT_ACCESS,
    TOKEN_NOT_REFRESH,
    TOKEN_NOT_YOURS,
    TOKEN_OUTDATED,
    TOKEN_REVOKED,
    USERNAME_INVALID,
    USERNAME_TAKEN,
)
from accounts.selectors import request_counter_key, user_get, user_get_by_username
from accounts.throttling import UserRegisterThrottle
from core.redis import store
from tests.accounts.support import RACE_NAMES, redis_contents, run_together

REGISTER = "/api/auth/register/"
LOGIN = "/api/auth/login/"
REFRESH = "/api/auth/refresh/"
LOGOUT = "/api/auth/logout/"
ME = "/api/auth/me/"


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _sign(claims: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm=algorithm)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _error(detail: str, code: str) -> dict:
    return {"detail": detail, "code": code}


# --- register ------------------------------------------------------------------------------


def test_register_creates_the_user(api_client: APIClient) -> None:
    response = api_client.post(
        REGISTER, {"username": "Alice01", "password": "secret1"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user_id", "username"}
    assert body["username"] == "Alice01"
    assert user_get(user_id=body["user_id"])["role"] == "user"


@pytest.mark.parametrize("username", ["abcde", "abcdefghij12345"])
def test_register_accepts_username_of_5_and_15(api_client: APIClient, username: str) -> None:
    response = api_client.post(
        REGISTER, {"username": username, "password": "secret1"}, format="json"
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "username",
    ["abcd", "abcdefghij123456", "alice_01", "alice 01", " alice01", "alicé01", "ålice01"],
)
def test_register_refuses_bad_usernames(api_client: APIClient, username: str) -> None:
    response = api_client.post(
        REGISTER, {"username": username, "password": "secret1"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"username": [USERNAME_INVALID]}


@pytest.mark.parametrize("password", ["123456", "123456789012"])
def test_register_accepts_password_of_6_and_12(api_client: APIClient, password: str) -> None:
    response = api_client.post(
        REGISTER, {"username": "alice01", "password": password}, format="json"
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("password", ["12345", "1234567890123"])
def test_register_refuses_bad_passwords(api_client: APIClient, password: str) -> None:
    response = api_client.post(
        REGISTER, {"username": "alice01", "password": password}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"password": [PASSWORD_INVALID]}


def test_register_refuses_huge_fields_with_400(api_client: APIClient) -> None:
    response = api_client.post(
        REGISTER, {"username": "u" * 10_000, "password": "p" * 10_000}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"username": [USERNAME_INVALID], "password": [PASSWORD_INVALID]}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, {"username": ["This field is required."], "password": ["This field is required."]}),
        (
            {"username": ["alice01"], "password": {"p": 1}},
            {"username": ["Not a valid string."], "password": ["Not a valid string."]},
        ),
        (
            ["alice01", "secret1"],
            {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
        ),
    ],
)
def test_register_refuses_wrong_shapes(
    api_client: APIClient, payload: object, expected: dict
) -> None:
    response = api_client.post(REGISTER, payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected


def test_register_refuses_non_json(api_client: APIClient) -> None:
    response = api_client.post(REGISTER, "username=alice01", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_register_refuses_a_name_taken_in_another_case(api_client: APIClient, user: dict) -> None:
    response = api_client.post(
        REGISTER, {"username": "ALICE01", "password": "secret1"}, format="json"
    )

    assert response.status_code == 409
    assert response.json() == _error(USERNAME_TAKEN, "username_taken")


def test_concurrent_registrations_give_exactly_one_201() -> None:
    def register(i: int) -> int:
        payload = {"username": RACE_NAMES[i], "password": "secret1"}
        return APIClient().post(REGISTER, payload, format="json").status_code

    statuses = run_together(len(RACE_NAMES), register)

    assert sorted(statuses) == [201] + [409] * (len(RACE_NAMES) - 1)


def test_no_plaintext_password_anywhere_in_redis(api_client: APIClient) -> None:
    password = "Xq7-unique!"
    statuses = [
        api_client.post(path, {"username": "alice01", "password": pw}, format="json").status_code
        for path, pw in [(REGISTER, password), (LOGIN, password), (LOGIN, password + "x")]
    ]
    assert statuses == [201, 200, 401]

    for client in (store(), get_redis_connection("default")):
        contents = list(redis_contents(client))
        assert contents  # the scan saw something: the user, the throttle history
        for item in contents:
            text = item.decode(errors="replace") if isinstance(item, bytes) else item
            assert password not in text
    record = user_get_by_username(username="alice01", include_password_hash=True)
    assert record["password"].startswith("md5$")  # the test settings' hasher


# --- login ---------------------------------------------------------------------------------


def test_login_returns_tokens(api_client: APIClient, user: dict) -> None:
    response = api_client.post(
        LOGIN, {"username": "ALICE01", "password": user["password"]}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "user_id", "token_type", "expires_in"}
    assert body["user_id"] == user["user_id"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    access = _claims(body["access"])
    assert {k: access[k] for k in ("user_id", "username", "role", "token_type")} == {
        "user_id": user["user_id"],
        "username": "alice01",
        "role": "user",
        "token_type": "access",
    }
    assert access["exp"] - time.time() == pytest.approx(900, abs=5)
    assert _claims(body["refresh"])["token_type"] == "refresh"


def test_login_answers_wrong_password_and_unknown_user_alike(
    api_client: APIClient, user: dict
) -> None:
    wrong = api_client.post(
        LOGIN, {"username": user["username"], "password": "not-it"}, format="json"
    )
    unknown = api_client.post(
        LOGIN, {"username": "nobody01", "password": user["password"]}, format="json"
    )

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content
    assert wrong.json() == _error(INVALID_CREDENTIALS, "invalid_credentials")
    assert wrong["WWW-Authenticate"] == unknown["WWW-Authenticate"] == 'Bearer realm="api"'


def test_login_ignores_a_broken_authorization_header(user: dict) -> None:
    client = _bearer("garbage")

    response = client.post(
        LOGIN, {"username": user["username"], "password": user["password"]}, format="json"
    )

    assert response.status_code == 200


def test_login_refuses_huge_fields_with_400(api_client: APIClient, user: dict) -> None:
    response = api_client.post(
        LOGIN, {"username": "u" * 10_000, "password": "p" * 10_000}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


# --- me ------------------------------------------------------------------------------------


def test_me_describes_the_caller(auth_client: APIClient, user: dict) -> None:
    store().set(request_counter_key(user_id=user["user_id"]), 7)

    response = auth_client.get(ME)

    assert response.status_code == 200
    assert response.json() == {
        "user_id": user["user_id"],
        "username": "alice01",
        "role": "user",
        "request_count": 7,
    }


def test_me_counts_zero_before_any_push(auth_client: APIClient) -> None:
    assert auth_client.get(ME).json()["request_count"] == 0


def test_me_without_a_token_is_401(api_client: APIClient) -> None:
    response = api_client.get(ME)

    assert response.status_code == 401
    assert response.json() == _error(NotAuthenticated.default_detail, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


# --- token errors --------------------------------------------------------------------------


def _expired(access: str) -> str:
    return _sign({**_claims(access), "exp": int(time.time()) - 60})


def _tampered(access: str) -> str:
    header, _, signature = access.split(".")
    return ".".join([header, _b64({**_claims(access), "role": "admin"}), signature])


def _alg_none(access: str) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(access))}."


def _other_key(access: str) -> str:
    return _sign(_claims(access), key="another-signing-key-of-enough-length-0123")


def _other_algorithm(access: str) -> str:
    return _sign(_claims(access), algorithm="HS512")


def _without_user_id(access: str) -> str:
    claims = _claims(access)
    del claims["user_id"]
    return _sign(claims)


def _without_family(access: str) -> str:
    # As issued before token families: every token we issue now has one.
    claims = _claims(access)
    del claims["fam"]
    return _sign(claims)


def _without_key_layout(access: str) -> str:
    # As issued before the revocation keys were tagged by user: its revocation is unreadable.
    claims = _claims(access)
    del claims["kl"]
    return _sign(claims)


def _without_exp(access: str) -> str:
    claims = _claims(access)
    del claims["exp"]
    return _sign(claims)


@pytest.mark.parametrize(
    ("forge", "detail", "code"),
    [
        (_expired, TOKEN_EXPIRED, "token_expired"),
        (_tampered, TOKEN_BAD_SIGNATURE, "token_bad_signature"),
        (_alg_none, TOKEN_BAD_SIGNATURE, "token_bad_signature"),
        (_other_key, TOKEN_BAD_SIGNATURE, "token_bad_signature"),
        pytest.param(
            _other_algorithm,
            TOKEN_BAD_SIGNATURE,
            "token_bad_signature",
            # Our own key is short for HS512; that is beside the point here.
            marks=pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
        ),
        (_without_user_id, TOKEN_MALFORMED, "token_malformed"),
        (_without_family, TOKEN_MALFORMED, "token_malformed"),
        (_without_exp, TOKEN_MALFORMED, "token_malformed"),
        (_without_key_layout, TOKEN_OUTDATED, "token_outdated"),
        (lambda access: "not-a-jwt", TOKEN_MALFORMED, "token_malformed"),
        (lambda access: access[:-3], TOKEN_BAD_SIGNATURE, "token_bad_signature"),
    ],
    ids=lambda value: getattr(value, "__name__", None) if callable(value) else None,
)
def test_bad_access_tokens_get_401_saying_why(
    tokens: dict, forge: Callable[[str], str], detail: str, code: str
) -> None:
    response = _bearer(forge(tokens["access"])).get(ME)

    assert response.status_code == 401
    assert response.json() == _error(detail, code)


def test_refresh_token_used_as_access_token_is_401(tokens: dict) -> None:
    response = _bearer(tokens["refresh"]).get(ME)

    assert response.status_code == 401
    assert response.json() == _error(TOKEN_NOT_ACCESS, "token_not_access")


@pytest.mark.parametrize("header", ["Bearer", "Bearer one two"])
def test_mangled_bearer_header_is_401(header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(ME)

    assert response.status_code == 401
    assert response.json() == _error(TOKEN_MALFORMED, "token_malformed")


# --- refresh -------------------------------------------------------------------------------


def _refreshed(client: APIClient, refresh: str) -> dict:
    response = client.post(REFRESH, {"refresh": refresh}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_refresh_rotates_the_pair(api_client: APIClient, tokens: dict) -> None:
    body = _refreshed(api_client, tokens["refresh"])

    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != tokens["refresh"]
    assert _bearer(body["access"]).get(ME).status_code == 200
    # The new refresh token rotates in turn, and every pair stays in the login's token family.
    again = _refreshed(api_client, body["refresh"])
    issued = [tokens["access"], tokens["refresh"], *body.values(), *again.values()]
    assert {_claims(token)["fam"] for token in issued} == {_claims(tokens["refresh"])["fam"]}


def test_a_replayed_refresh_token_revokes_its_family(
    api_client: APIClient, tokens: dict, user: dict, caplog: pytest.LogCaptureFixture
) -> None:
    first = _refreshed(api_client, tokens["refresh"])
    second = _refreshed(api_client, first["refresh"])
    assert _bearer(second["access"]).get(ME).status_code == 200
    credentials = {"username": user["username"], "password": user["password"]}
    other_login = api_client.post(LOGIN, credentials, format="json").json()
    other_session = _refreshed(api_client, other_login["refresh"])

    with caplog.at_level(logging.WARNING, logger="accounts.security"):
        replayed = api_client.post(
            REFRESH, {"refresh": first["refresh"]}, format="json", HTTP_X_REQUEST_ID="replay-1"
        )

    assert replayed.status_code == 401
    assert replayed.json() == _error(TOKEN_REVOKED, "token_revoked")
    # Every token of the family is refused now, the access token from the second refresh too.
    for access in (second["access"], first["access"], tokens["access"]):
        assert _bearer(access).get(ME).json() == _error(TOKEN_REVOKED, "token_revoked")
    latest = api_client.post(REFRESH, {"refresh": second["refresh"]}, format="json")
    assert latest.json() == _error(TOKEN_REVOKED, "token_revoked")
    # The same user's other login is another family, untouched.
    assert _bearer(other_session["access"]).get(ME).status_code == 200
    [warning] = [record for record in caplog.records if record.name == "accounts.security"]
    assert warning.levelno == logging.WARNING
    assert (warning.user_id, warning.request_id) == (user["user_id"], "replay-1")
    assert warning.token_family == _claims(tokens["refresh"])["fam"]


@pytest.mark.parametrize(
    ("pick", "detail", "code"),
    [
        (lambda tokens: tokens["access"], TOKEN_NOT_REFRESH, "token_not_refresh"),
        (lambda tokens: _expired(tokens["refresh"]), TOKEN_EXPIRED, "token_expired"),
        (lambda tokens: "x.y.z", TOKEN_MALFORMED, "token_malformed"),
        (lambda tokens: _without_key_layout(tokens["refresh"]), TOKEN_OUTDATED, "token_outdated"),
    ],
)
def test_refresh_with_a_bad_token_is_401(
    api_client: APIClient, tokens: dict, pick: Callable[[dict], str], detail: str, code: str
) -> None:
    response = api_client.post(REFRESH, {"refresh": pick(tokens)}, format="json")

    assert response.status_code == 401
    assert response.json() == _error(detail, code)


def test_refresh_without_a_token_is_400(api_client: APIClient) -> None:
    response = api_client.post(REFRESH, {}, format="json")

    assert response.status_code == 400
    assert response.json() == {"refresh": ["This field is required."]}


# --- logout --------------------------------------------------------------------------------


def test_logout_revokes_access_and_refresh(
    api_client: APIClient, auth_client: APIClient, tokens: dict
) -> None:
    response = auth_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 204
    after = auth_client.get(ME)
    assert after.status_code == 401
    assert after.json() == _error(TOKEN_REVOKED, "token_revoked")
    refreshed = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 401
    assert refreshed.json() == _error(TOKEN_REVOKED, "token_revoked")


def test_logout_without_a_body_revokes_only_the_access_token(
    api_client: APIClient, auth_client: APIClient, tokens: dict
) -> None:
    assert auth_client.post(LOGOUT, format="json").status_code == 204

    assert auth_client.get(ME).json() == _error(TOKEN_REVOKED, "token_revoked")
    assert (
        api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 200
    )


def test_logout_refuses_another_users_refresh(
    auth_client: APIClient, make_user: Callable[..., dict], api_client: APIClient
) -> None:
    other = make_user("bobby01")
    theirs = api_client.post(
        LOGIN, {"username": "bobby01", "password": other["password"]}, format="json"
    ).json()

    response = auth_client.post(LOGOUT, {"refresh": theirs["refresh"]}, format="json")

    assert response.status_code == 403
    assert response.json() == _error(TOKEN_NOT_YOURS, "token_not_yours")
    assert auth_client.get(ME).status_code == 200
    assert (
        api_client.post(REFRESH, {"refresh": theirs["refresh"]}, format="json").status_code == 200
    )


def test_logout_with_an_expired_refresh_still_logs_out(
    auth_client: APIClient, tokens: dict
) -> None:
    response = auth_client.post(LOGOUT, {"refresh": _expired(tokens["refresh"])}, format="json")

    assert response.status_code == 204
    assert auth_client.get(ME).status_code == 401


def test_logout_needs_a_token(api_client: APIClient) -> None:
    response = api_client.post(LOGOUT, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- throttling (login's: tests/accounts/test_throttling.py) -------------------------------


def test_register_is_throttled_per_address(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(UserRegisterThrottle, "rate", "1/min", raising=False)

    first = api_client.post(REGISTER, {"username": "alice01", "password": "secret1"}, format="json")
    second = api_client.post(
        REGISTER, {"username": "bobby01", "password": "secret1"}, format="json"
    )

    assert (first.status_code, second.status_code) == (201, 429)
    assert int(second["Retry-After"]) > 0
    assert user_get_by_username(username="bobby01") is None
