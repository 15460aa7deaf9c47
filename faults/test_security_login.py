"""Login leaks nothing through timing, and oversized credentials are a 400, not a crash."""

import statistics

from faults.api import Accounts, Api, random_password, random_username
from faults.probes import record

ATTEMPTS = 30
TOLERANCE = 0.25  # the slower median may be at most 25% above the faster one
OVERSIZED = "x" * 10_000


def test_unknown_user_and_wrong_password_take_the_same_time(accounts: Accounts) -> None:
    account = accounts.create("lt")
    wrong = random_password()
    seconds: dict[str, list[float]] = {"unknown user": [], "wrong password": []}
    answers = set()

    # Alternated, so drift in machine load falls on both sides alike.
    for _ in range(ATTEMPTS):
        for case, username in (
            ("unknown user", random_username("nx")),
            ("wrong password", account.username),
        ):
            reply = accounts.attempt_login(username, wrong)
            seconds[case].append(reply.seconds)
            answers.add((reply.status, reply.body))
    medians = {case: statistics.median(values) for case, values in seconds.items()}
    ratio = max(medians.values()) / min(medians.values())
    record(
        "security: login timing",
        attempts_each=ATTEMPTS,
        median_ms={case: round(value * 1000, 1) for case, value in medians.items()},
        ratio=round(ratio, 3),
    )

    # One answer for both: the body does not tell them apart either.
    assert len(answers) == 1
    ((status, _),) = answers
    assert status == 401
    assert ratio <= 1 + TOLERANCE, medians


def test_a_10000_character_username_or_password_is_a_400(api: Api, accounts: Accounts) -> None:
    answers = {}
    for endpoint in ("register", "login"):
        for field in ("username", "password"):
            body = {"username": random_username(), "password": random_password(), field: OVERSIZED}
            accounts.passwords.add(body["password"])
            reply = api.post(f"/api/auth/{endpoint}/", body)
            answers[f"{endpoint} {field}"] = (reply.status, sorted(reply.data or {}))
    record("security: oversized fields", statuses={k: status for k, (status, _) in answers.items()})

    # A 400 that names the field: validated, never hashed, never a 500.
    assert answers == {
        f"{endpoint} {field}": (400, [field])
        for endpoint in ("register", "login")
        for field in ("username", "password")
    }
