"""Erasing a user against the real Redis and Elasticsearch: at once, completely, and only them."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_q.signing import SignedPackage
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.exceptions import PASSWORD_WRONG, TOKEN_REVOKED
from accounts.selectors import (
    ERASURES_FAILED_KEY,
    erasures_failed,
    request_count_get,
    user_get,
)
from accounts.services import api_key_create
from core.broker import ReliableRedisBroker
from core.queue import inbox
from core.redis import store
from core.search import _clients as search_clients
from core.search import es_client
from tests.support.queue import drain, queued
from tests.tracker.support import document, index, refresh
from tracker import tasks as tracker_tasks
from tracker.documents import index_alias
from tracker.tasks import user_messages_erase

ME = "/api/auth/me/"
PUSH = "/api/pusher/push/"

pytestmark = pytest.mark.usefixtures("clean_index")


def _count(user_id: str) -> int:
    refresh()
    return es_client().count(index=index_alias(), query={"term": {"user_id": user_id}})["count"]


def _failed_gauge() -> float:
    """logger_erasures_failed as /metrics shows it."""
    body = APIClient().get("/metrics").content.decode()
    (line,) = [line for line in body.splitlines() if line.startswith("logger_erasures_failed ")]
    return float(line.split()[1])


def _erase_task() -> tuple:
    """The task the erasure queued (run by a worker in production), by name and arguments."""
    broker = ReliableRedisBroker()
    tasks = [SignedPackage.loads(t) for t in broker.connection.hvals(broker.tasks_key)]
    (task,) = [t for t in tasks if t["func"] == "tracker.tasks.user_messages_erase"]
    return task["args"]


def test_erasing_yourself_refuses_your_credentials_at_once_and_deletes_your_messages(
    auth_client, tokens, user, make_user
):
    other = make_user("bob0001")
    index(*[document(user_id=user["user_id"]) for _ in range(12)])
    index(*[document(user_id=other["user_id"]) for _ in range(5)])
    key = api_key_create(user_id=user["user_id"], name="app", scopes=["push"])["key"]
    auth_client.post(PUSH, {"message": "counted"}, format="json")

    response = auth_client.delete(ME, {"password": user["password"]}, format="json")

    assert response.status_code == 202
    erasure_id = response.json()["erasure_id"]
    assert response.json()["status_url"].endswith(f"/api/auth/erasures/{erasure_id}/")
    # At once: the access token, the refresh token and the key.
    assert auth_client.get(ME).json()["detail"] == TOKEN_REVOKED
    refreshed = APIClient().post(
        "/api/auth/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 401
    keyed = APIClient(HTTP_X_API_KEY=key).post(PUSH, {"message": "x"}, format="json")
    assert keyed.status_code == 401
    assert user_get(user_id=user["user_id"]) is None
    assert request_count_get(user_id=user["user_id"]) == 0
    status = APIClient().get(f"/api/auth/erasures/{erasure_id}/").json()
    assert status["status"] == "running"

    # The queue's part: both passes, as the worker runs them.
    erasure, user_id = _erase_task()
    user_messages_erase(erasure, user_id)
    user_messages_erase(erasure, user_id, final=True)

    status = APIClient().get(f"/api/auth/erasures/{erasure_id}/").json()
    assert (status["status"], status["messages_deleted"]) == ("done", 12)
    assert status["finished"] is not None
    assert _count(user["user_id"]) == 0
    assert _count(other["user_id"]) == 5


def test_a_message_in_the_pipeline_at_erasure_is_never_tracked(auth_client, user):
    auth_client.post(PUSH, {"message": "in flight"}, format="json")
    (payload,) = queued("validator")

    auth_client.delete(ME, {"password": user["password"]}, format="json")
    late = {
        **payload,
        "category": "Direct",
        "attempts": [{"random_number": 7, "at": payload["created_time"]}],
        "random_numbers": [7],
    }
    late.pop("random_number")
    inbox("tracker").append([late])
    drain("tracker")

    assert _count(user["user_id"]) == 0


def test_a_wrong_password_erases_nothing(auth_client, user):
    response = auth_client.delete(ME, {"password": "wrong-pw"}, format="json")

    assert (response.status_code, response.json()["detail"]) == (403, PASSWORD_WRONG)
    assert auth_client.get(ME).status_code == 200


def test_an_admin_erases_any_user_and_a_user_cannot(admin_client, auth_client, user, make_user):
    other = make_user("bob0001")

    assert auth_client.delete(f"/api/auth/users/{other['user_id']}/").status_code == 403
    response = admin_client.delete(f"/api/auth/users/{other['user_id']}/")

    assert response.status_code == 202
    assert user_get(user_id=other["user_id"]) is None
    assert admin_client.delete(f"/api/auth/users/{other['user_id']}/").status_code == 404


def test_an_unknown_erasure_is_a_404():
    assert APIClient().get("/api/auth/erasures/nope/").status_code == 404


def test_deleteuser_without_purge_removes_the_user_and_their_keys(user):
    key = api_key_create(user_id=user["user_id"], name="app", scopes=["push"])["key"]

    call_command("deleteuser", user["username"])

    assert user_get(user_id=user["user_id"]) is None
    assert (
        APIClient(HTTP_X_API_KEY=key).post(PUSH, {"message": "x"}, format="json").status_code == 401
    )


def test_an_erasure_that_gives_up_shows_failed_and_can_be_resumed(
    auth_client, user, monkeypatch, request, settings
):
    es_url = settings.ELASTICSEARCH_URL
    index(*[document(user_id=user["user_id"]) for _ in range(3)])
    response = auth_client.delete(ME, {"password": user["password"]}, format="json")
    erasure_id = response.json()["erasure_id"]
    request.getfixturevalue("es_down")  # Elasticsearch goes down after the request
    monkeypatch.setattr(tracker_tasks, "ERASE_RETRY_MAX_SECONDS", 0)  # and stays down too long

    user_messages_erase(*_erase_task())

    status = APIClient().get(f"/api/auth/erasures/{erasure_id}/").json()
    assert (status["status"], status["messages_deleted"]) == ("failed", 0)
    assert status["finished"] is not None
    assert "Elasticsearch" in status["reason"]
    # An operator finds it without the logs: listed, and counted by /metrics for alerts.
    assert erasures_failed() == [erasure_id]
    assert _failed_gauge() == 1
    listed = StringIO()
    call_command("resumeerasure", "--list", stdout=listed)
    assert listed.getvalue().startswith(erasure_id) and status["reason"] in listed.getvalue()

    # Once Elasticsearch is back, an operator resumes it, and it ends like any other.
    settings.ELASTICSEARCH_URL = es_url
    search_clients.clear()  # es_client() builds a new client from the setting
    broker = ReliableRedisBroker()
    broker.purge_queue()
    resumed = StringIO()
    call_command("resumeerasure", "--all", stdout=resumed)
    assert "1 failed erasure(s) resumed" in resumed.getvalue()
    assert (erasures_failed(), _failed_gauge()) == ([], 0)
    assert store().zcard(ERASURES_FAILED_KEY) == 0  # the index keeps only failed ones
    assert APIClient().get(f"/api/auth/erasures/{erasure_id}/").json()["status"] == "running"
    for _ in range(2):  # the first pass, then the second (final), each as queued
        (task,) = [SignedPackage.loads(t) for t in broker.connection.hvals(broker.tasks_key)]
        broker.purge_queue()
        user_messages_erase(*task["args"], **task["kwargs"])
    status = APIClient().get(f"/api/auth/erasures/{erasure_id}/").json()
    assert (status["status"], status["messages_deleted"], status["reason"]) == ("done", 3, None)
    with pytest.raises(CommandError, match="No failed erasure"):
        call_command("resumeerasure", erasure_id)
    with pytest.raises(CommandError, match="Give an ERASURE_ID, --all or --list"):
        call_command("resumeerasure")


def test_an_erasure_id_never_starts_with_a_dash(monkeypatch):
    # `manage.py resumeerasure -6yY...` would read such an id as an option.
    drawn = iter(["-6yYVKRXQ", "_6yYVKRXQ"])
    monkeypatch.setattr(account_services.secrets, "token_urlsafe", lambda size: next(drawn))

    assert account_services._erasure_id() == "_6yYVKRXQ"


def test_an_id_that_starts_with_a_dash_is_given_after_two_dashes():
    with pytest.raises(CommandError, match="No failed erasure -6yYVKRXQ"):
        call_command("resumeerasure", "--", "-6yYVKRXQ")
