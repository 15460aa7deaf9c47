"""The createuser, deleteuser and listusers management commands."""

from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.exceptions import PASSWORD_INVALID, USERNAME_INVALID, USERNAME_TAKEN
from accounts.management.commands import createuser
from accounts.management.commands.createuser import PASSWORDS_DIFFER
from accounts.management.commands.deleteuser import NO_SUCH_USER
from accounts.management.commands.listusers import NO_USERS
from accounts.selectors import user_get_by_username, users_list


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _prompt_answers(monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
    replies = iter(answers)
    monkeypatch.setattr(createuser, "getpass", lambda prompt: next(replies))


def test_createuser_admin_then_login_shows_admin() -> None:
    output = _run("createuser", "root01", "--admin", "--password", "secret1")

    assert "Created admin root01" in output
    client = APIClient()
    login = client.post(
        "/api/auth/login/", {"username": "root01", "password": "secret1"}, format="json"
    )
    assert login.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
    assert client.get("/api/auth/me/").json()["role"] == "admin"


def test_createuser_makes_a_plain_user_by_default() -> None:
    _run("createuser", "alice01", "--password", "secret1")

    assert user_get_by_username(username="alice01")["role"] == "user"


def test_createuser_prompts_twice_for_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    _prompt_answers(monkeypatch, "secret1", "secret1")

    _run("createuser", "alice01")

    assert user_get_by_username(username="alice01") is not None


def test_createuser_refuses_differing_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    _prompt_answers(monkeypatch, "secret1", "secret2")

    with pytest.raises(CommandError, match=PASSWORDS_DIFFER):
        _run("createuser", "alice01")
    assert users_list() == []


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [("bad_name", "secret1", USERNAME_INVALID), ("alice01", "12345", PASSWORD_INVALID)],
)
def test_createuser_reports_rule_violations(username: str, password: str, message: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        _run("createuser", username, "--password", password)
    assert message in str(excinfo.value)


def test_createuser_reports_a_taken_name(make_user: Callable[..., dict]) -> None:
    make_user("alice01")

    with pytest.raises(CommandError, match=USERNAME_TAKEN):
        _run("createuser", "ALICE01", "--password", "secret1")


def test_deleteuser_removes_the_user(make_user: Callable[..., dict]) -> None:
    make_user("alice01")

    assert "Deleted" in _run("deleteuser", "Alice01")
    assert user_get_by_username(username="alice01") is None
    with pytest.raises(CommandError, match=NO_SUCH_USER.format(username="alice01")):
        _run("deleteuser", "alice01")


def test_listusers_prints_a_table(make_user: Callable[..., dict]) -> None:
    alice = make_user("alice01")
    root = make_user("root01", role="admin")

    lines = _run("listusers").splitlines()

    assert lines[0].split() == ["user_id", "username", "role", "created_time"]
    assert [line.split() for line in lines[1:]] == [
        [alice["user_id"], "alice01", "user", alice["created_time"]],
        [root["user_id"], "root01", "admin", root["created_time"]],
    ]
    assert "password" not in "".join(lines)


def test_listusers_with_no_users() -> None:
    assert _run("listusers").strip() == NO_USERS
