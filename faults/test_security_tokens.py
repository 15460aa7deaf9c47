"""Every kind of bad bearer token gets 401, with the code that says why, on protected endpoints."""

import base64
import json
import time
from collections.abc import Callable

import jwt

from faults.api import Account, Accounts, Api
from faults.probes import record
from faults.stack import JWT_SIGNING_KEY

OTHER_KEY = "not-the-server-key-0123456789abcdef"


def _claims(account: Account, **changes: object) -> dict:
    """The claims of `account`'s real access token, with `changes` applied."""
    return {**jwt.decode(account.access, options={"verify_signature": False}), **changes}


def _b64(data: dict) -> str:
    """Base64url-encode a JSON object the way JWT segments are."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _alg_none(account: Account, accounts: Accounts) -> str:
    """An unsigned token claiming admin."""
    return jwt.encode(_claims(account, role="admin"), None, algorithm="none")


def _other_key(account: Account, accounts: Accounts) -> str:
    """Well-formed claims signed HS256 with a key the server does not hold."""
    return jwt.encode(_claims(account), OTHER_KEY, algorithm="HS256")


def _other_algorithm(account: Account, accounts: Accounts) -> str:
    """The server's key, but HS512: only HS256 is accepted."""
    return jwt.encode(_claims(account), JWT_SIGNING_KEY, algorithm="HS512")


def _expired(account: Account, accounts: Accounts) -> str:
    """Correctly signed, expired a minute ago."""
    now = int(time.time())
    return jwt.encode(_claims(account, iat=now - 960, exp=now - 60), JWT_SIGNING_KEY, "HS256")


def _tampered(account: Account, accounts: Accounts) -> str:
    """A real token whose payload was edited to claim admin; the signature is the original."""
    header, _, signature = account.access.split(".")
    return ".".join((header, _b64(_claims(account, role="admin")), signature))


def _revoked(account: Account, accounts: Accounts) -> str:
    """The access token of a session that logged out."""
    session = Account(account.username, account.password)
    accounts.login(session)
    reply = accounts.api.post("/api/auth/logout/", {}, token=session.access)
    assert reply.status == 204, reply.body
    return session.access


def _refresh_as_access(account: Account, accounts: Accounts) -> str:
    """A valid refresh token presented as an access token."""
    return account.refresh


def _garbage(account: Account, accounts: Accounts) -> str:
    """Not a JWT at all."""
    return "not-a-token"


# Each forged token and the 401 code it must get.
CASES: dict[str, tuple[Callable[[Account, Accounts], str], str]] = {
    "alg=none": (_alg_none, "token_bad_signature"),
    "HS256, other key": (_other_key, "token_bad_signature"),
    "HS512, right key": (_other_algorithm, "token_bad_signature"),
    "expired": (_expired, "token_expired"),
    "tampered claims": (_tampered, "token_bad_signature"),
    "revoked": (_revoked, "token_revoked"),
    "refresh as access": (_refresh_as_access, "token_not_access"),
    "garbage": (_garbage, "token_malformed"),
}


def _answers(api: Api, token: str) -> dict[str, tuple[int, str | None]]:
    """Status and code of a read and a write made with `token`."""
    me = api.get("/api/auth/me/", token=token)
    push = api.post("/api/pusher/push/", {"message": "forged"}, token=token)
    return {"me": (me.status, me.code), "push": (push.status, push.code)}


def test_bad_tokens_are_refused_with_401(api: Api, accounts: Accounts) -> None:
    account = accounts.create("tk")
    before = api.get("/api/auth/me/", token=account.access).data["request_count"]

    answers = {name: _answers(api, build(account, accounts)) for name, (build, _) in CASES.items()}
    expected = {
        name: dict.fromkeys(("me", "push"), (401, code)) for name, (_, code) in CASES.items()
    }
    after = api.get("/api/auth/me/", token=account.access)
    record(
        "security: tokens",
        answers={name: sorted({status for status, _ in a.values()}) for name, a in answers.items()},
    )

    assert answers == expected
    # The genuine token still works, and no forged push was counted.
    assert after.status == 200
    assert after.data["request_count"] == before
