"""API keys against the real Redis: create, list, use, scope refusal, revoke, expiry, deletion."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

import accounts.services
from accounts.exceptions import API_KEY_INVALID, API_KEY_NOT_HERE
from accounts.selectors import api_key_get, api_key_key
from accounts.services import API_KEY_PREFIX, api_key_create, api_key_verify, user_delete
from core.redis import store
from tests.support.queue import queued

KEYS = "/api/auth/keys/"
PUSH = "/api/pusher/push/"
SEARCH = "/api/tracker/messages/"


def _with_key(key: str, *, header: str = "bearer") -> APIClient:
    client = APIClient()
    if header == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    else:
        client.credentials(HTTP_X_API_KEY=key)
    return client


def _queued() -> list[dict]:
    return queued("validator")


def test_a_key_is_created_shown_once_and_listed_without_its_secret(auth_client, user):
    created = auth_client.post(KEYS, {"name": "billing", "scopes": ["push"]}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(f"{API_KEY_PREFIX}{body['key_id']}_")
    assert (body["name"], body["scopes"], body["expires"]) == ("billing", ["push"], None)
    listed = auth_client.get(KEYS).json()
    assert [key["key_id"] for key in listed] == [body["key_id"]]
    assert "key" not in listed[0]
    assert listed[0]["last_used"] is None
    stored = store().hgetall(api_key_key(key_id=body["key_id"]))
    assert body["key"].split("_", 2)[2] not in json.dumps(stored)  # only a hash is kept


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_a_push_key_pushes_as_its_owner(auth_client, user, header):
    key = auth_client.post(KEYS, {"name": "app", "scopes": ["push"]}, format="json").json()

    response = _with_key(key["key"], header=header).post(PUSH, {"message": "hi"}, format="json")

    assert response.status_code == 202
    assert response.json()["user_id"] == user["user_id"]
    assert [p["user_id"] for p in _queued()] == [user["user_id"]]
    assert auth_client.get(KEYS).json()[0]["last_used"] is not None


def test_a_push_only_key_gets_403_on_the_trackers_reads(auth_client, user):
    key = api_key_create(user_id=user["user_id"], name="app", scopes=["push"])["key"]

    response = _with_key(key).get(SEARCH)

    assert response.status_code == 403
    assert response.json()["detail"] == "This API key lacks the read scope."


def test_a_read_key_reads_but_cannot_push(user, es_index):
    key = api_key_create(user_id=user["user_id"], name="grafana", scopes=["read"])["key"]

    assert _with_key(key).get(SEARCH).status_code == 200
    assert _with_key(key).post(PUSH, {"message": "x"}, format="json").status_code == 403
    assert _queued() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", KEYS), ("get", "/api/auth/me/"), ("post", "/api/tracker/messages/")],
)
def test_a_key_is_refused_where_only_people_may_act(user, method, path):
    key = api_key_create(user_id=user["user_id"], name="x", scopes=["push", "read"])["key"]

    response = getattr(_with_key(key), method)(path, {}, format="json")

    assert (response.status_code, response.json()["detail"]) == (403, API_KEY_NOT_HERE)


def test_a_revoked_key_is_refused_from_the_next_request(auth_client, user):
    key = auth_client.post(KEYS, {"name": "app", "scopes": ["push"]}, format="json").json()
    client = _with_key(key["key"])
    assert client.post(PUSH, {"message": "before"}, format="json").status_code == 202

    assert auth_client.delete(f"{KEYS}{key['key_id']}/").status_code == 204
    after = client.post(PUSH, {"message": "after"}, format="json")

    assert (after.status_code, after.json()["detail"]) == (401, API_KEY_INVALID)
    assert auth_client.get(KEYS).json() == []
    assert auth_client.delete(f"{KEYS}{key['key_id']}/").status_code == 404


def test_another_users_key_cannot_be_revoked(auth_client, make_user, client_for):
    bob = make_user("bob0001")
    theirs = api_key_create(user_id=bob["user_id"], name="bob's", scopes=["push"])

    assert auth_client.delete(f"{KEYS}{theirs['key_id']}/").status_code == 404
    assert store().exists(api_key_key(key_id=theirs["key_id"]))


def test_an_expired_key_is_refused(user):
    created = api_key_create(
        user_id=user["user_id"], name="old", scopes=["push"], expires_in_days=1
    )
    store().hset(api_key_key(key_id=created["key_id"]), "expires", "2020-01-01T00:00:00Z")

    response = _with_key(created["key"]).post(PUSH, {"message": "x"}, format="json")

    assert (response.status_code, response.json()["detail"]) == (401, API_KEY_INVALID)


@pytest.mark.parametrize("bad", [f"{API_KEY_PREFIX}nope", f"{API_KEY_PREFIX}abc_def", "plk_"])
def test_a_forged_key_is_a_401(bad):
    response = _with_key(bad).post(PUSH, {"message": "x"}, format="json")

    assert (response.status_code, response.json()["detail"]) == (401, API_KEY_INVALID)


def test_what_a_deleted_key_left_behind_is_a_401_not_a_500(user):
    created = api_key_create(user_id=user["user_id"], name="gone", scopes=["push"])
    record = api_key_key(key_id=created["key_id"])
    store().delete(record)
    # What a "last used" write racing the deletion used to leave: a hash with nothing else.
    store().hset(record, "last_used", "2024-01-01T00:00:00Z")

    response = _with_key(created["key"]).post(PUSH, {"message": "x"}, format="json")

    assert (response.status_code, response.json()["detail"]) == (401, API_KEY_INVALID)


def test_a_key_revoked_while_it_is_verified_is_not_brought_back(auth_client, user, monkeypatch):
    key = auth_client.post(KEYS, {"name": "app", "scopes": ["push"]}, format="json").json()

    def read_then_revoke(*, key_id: str) -> dict[str, str] | None:
        record = api_key_get(key_id=key_id)
        monkeypatch.undo()  # once: the revocation reads the key with the real api_key_get
        # The owner revokes the key between the verification's read and its "last used" write.
        assert auth_client.delete(f"{KEYS}{key_id}/").status_code == 204
        return record

    monkeypatch.setattr(accounts.services, "api_key_get", read_then_revoke)
    assert api_key_verify(key=key["key"]) is not None  # the request already in flight passes

    assert not store().exists(api_key_key(key_id=key["key_id"]))
    response = _with_key(key["key"]).post(PUSH, {"message": "x"}, format="json")
    assert (response.status_code, response.json()["detail"]) == (401, API_KEY_INVALID)


def test_deleting_a_user_revokes_all_their_keys(user):
    keys = [
        api_key_create(user_id=user["user_id"], name=f"k{i}", scopes=["push"]) for i in range(2)
    ]

    user_delete(username=user["username"])

    for key in keys:
        assert _with_key(key["key"]).post(PUSH, {"message": "x"}, format="json").status_code == 401
        assert not store().exists(api_key_key(key_id=key["key_id"]))


def test_the_createkey_command_prints_a_working_key(user):
    out, err = StringIO(), StringIO()

    call_command(
        "createkey", user["username"], "--name", "cron", "--scopes", "push", stdout=out, stderr=err
    )

    key = out.getvalue().strip()
    assert key.startswith(API_KEY_PREFIX)
    assert "cron" not in key and "push" in err.getvalue()
    assert _with_key(key).post(PUSH, {"message": "x"}, format="json").status_code == 202


def test_bad_key_input_is_a_400(auth_client):
    for body in (
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["admin"]},
        {"scopes": ["push"]},
        {"name": 5, "scopes": ["push"]},
    ):
        assert auth_client.post(KEYS, body, format="json").status_code == 400


@pytest.mark.parametrize("scope", [{}, None, 5, "admin"])
def test_a_scope_that_is_not_a_known_string_is_a_400_with_a_list_of_messages(auth_client, scope):
    response = auth_client.post(KEYS, {"name": "x", "scopes": [scope]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"scopes": ["Every scope must be one of: push, read, alerts."]}
