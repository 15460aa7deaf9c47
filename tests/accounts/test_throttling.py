"""Login throttling against the real Redis: failures only, per username+address and per address."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts.exceptions import INVALID_CREDENTIALS
from accounts.throttling import LOGIN_ADDRESS_SCOPE, LOGIN_SCOPE, login_failures_forget
from tests.accounts.support import run_together

LOGIN = "/api/auth/login/"
# Documentation ranges (RFC 5737): never a real client.
SPRAYER = "198.51.100.7"
ELSEWHERE = "203.0.113.20"
WRONG = "not-it-1"
# The documented defaults (config/settings/base.py), set explicitly so that a THROTTLE_* in the
# environment cannot change what these tests check.
DEFAULT_RATES = {LOGIN_SCOPE: "10/min", LOGIN_ADDRESS_SCOPE: "30/hour"}


@pytest.fixture
def login_rates(settings) -> Callable[..., None]:
    """Set the login rates (DRF re-reads its settings when they change)."""

    def _set(**rates: str) -> None:
        framework = settings.REST_FRAMEWORK
        settings.REST_FRAMEWORK = {
            **framework,
            "DEFAULT_THROTTLE_RATES": {**framework["DEFAULT_THROTTLE_RATES"], **rates},
        }

    _set(**DEFAULT_RATES)
    return _set


def _login(username: str, password: str, address: str = SPRAYER, client: APIClient | None = None):
    credentials = {"username": username, "password": password}
    return (client or APIClient()).post(LOGIN, credentials, format="json", REMOTE_ADDR=address)


def _assert_throttled(response, longest_wait: int) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= longest_wait


@pytest.mark.usefixtures("login_rates")
def test_40_failed_logins_across_40_usernames_from_one_address_get_429_before_the_40th(
    make_user: Callable[..., dict],
) -> None:
    victims = [make_user(f"victim{n:03d}") for n in range(40)]

    answers = [_login(victim["username"], WRONG) for victim in victims]

    statuses = [answer.status_code for answer in answers]
    assert statuses == [401] * 30 + [429] * 10  # the 31st is refused: 30 failures an hour
    assert answers[0].json()["detail"] == INVALID_CREDENTIALS
    _assert_throttled(answers[-1], longest_wait=3600)
    # Refused before the password is checked: the right one gets no 200 from this address...
    assert _login(victims[0]["username"], victims[0]["password"]).status_code == 429
    # ...while the same users elsewhere are neither refused nor locked out.
    assert _login(victims[39]["username"], WRONG, address=ELSEWHERE).status_code == 401
    assert _login(victims[0]["username"], victims[0]["password"], ELSEWHERE).status_code == 200


@pytest.mark.usefixtures("login_rates")
def test_a_user_logging_in_correctly_50_times_in_a_row_is_never_throttled(user: dict) -> None:
    statuses = [_login(user["username"], user["password"]).status_code for _ in range(50)]

    assert statuses == [200] * 50
    # The successes spent nothing: the whole budget of failures (10 a minute) is still there.
    failures = [_login(user["username"], WRONG).status_code for _ in range(11)]
    assert failures == [401] * 10 + [429]


def test_failures_lock_an_account_only_from_the_address_they_came_from(
    login_rates: Callable[..., None], user: dict, make_user: Callable[..., dict]
) -> None:
    login_rates(login="3/min")
    other = make_user("bobby01")

    assert [_login(user["username"], WRONG).status_code for _ in range(3)] == [401] * 3
    # Any letter case is the same account; even its right password is refused from here.
    _assert_throttled(_login("ALICE01", user["password"]), longest_wait=60)

    assert _login(user["username"], user["password"], address=ELSEWHERE).status_code == 200
    assert _login(other["username"], other["password"]).status_code == 200


def test_concurrent_failures_cannot_exceed_the_limit(login_rates: Callable[..., None]) -> None:
    login_rates(login_address="5/hour")

    statuses = run_together(16, lambda n: _login(f"racer{n:03d}", WRONG).status_code)

    assert sorted(statuses) == [401] * 5 + [429] * 11


def test_only_wrong_passwords_count(login_rates: Callable[..., None], user: dict) -> None:
    login_rates(login="2/min", login_address="2/hour")
    client = APIClient()

    malformed = [
        client.post(LOGIN, {"username": user["username"]}, format="json", REMOTE_ADDR=SPRAYER)
        for _ in range(5)
    ]

    assert [response.status_code for response in malformed] == [400] * 5
    assert [_login(user["username"], WRONG).status_code for _ in range(3)] == [401, 401, 429]


def test_forgetting_an_address_gives_it_its_budget_back(
    login_rates: Callable[..., None], user: dict
) -> None:
    login_rates(login="1/min", login_address="2/hour")
    assert [_login(f"spray{n:04d}", WRONG).status_code for n in range(3)] == [401, 401, 429]
    assert _login(user["username"], WRONG).status_code == 429

    login_failures_forget(address=SPRAYER)

    # Both kinds of window are empty again (spray0000's own one too), and fill up as before.
    again = [_login(name, WRONG).status_code for name in (user["username"], "spray0000", "x1234")]
    assert again == [401, 401, 429]


@pytest.mark.usefixtures("login_rates")
@pytest.mark.parametrize("field", ["username", "password"])
def test_a_lone_surrogate_in_a_login_is_a_400_not_a_500(field: str) -> None:
    # Valid JSON that strict UTF-8 cannot encode: the throttle must still count the attempt.
    fields = {"username": "alice01", "password": "abcdef", field: "\\ud800"}
    body = "{" + ", ".join(f'"{name}": "{value}"' for name, value in fields.items()) + "}"

    response = APIClient().post(LOGIN, body, content_type="application/json", REMOTE_ADDR=SPRAYER)

    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
