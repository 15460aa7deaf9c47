"""The OpenAPI schema states the rules the code enforces, so that clients and validators agree.

`make e2e` holds the running API to this schema with schemathesis (every check, every phase);
these tests pin each rule a finding of it led to, and show the code refuses what the schema
refuses and takes what it allows.
"""

import re
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.exceptions import PASSWORD_INVALID
from accounts.services import SCOPES
from tracker.selectors import CURSOR_PATTERN, PAGE_SIZE_MAX, STATS_ZONES

REGISTER = "/api/auth/register/"


@pytest.fixture
def schema(api_client: APIClient) -> dict[str, Any]:
    """The schema as /api/schema/ serves it."""
    return api_client.get("/api/schema/", {"format": "json"}).json()


def _component(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema["components"]["schemas"][name]


def _parameter(schema: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    parameters = schema["paths"][path]["get"]["parameters"]
    return next(p["schema"] for p in parameters if p["name"] == name)


def test_registration_states_the_username_and_password_rules(
    schema: dict[str, Any], api_client: APIClient
) -> None:
    fields = _component(schema, "UserRegisterInputRequest")["properties"]
    password = {"password": "x" * 5, "username": "alice01"}

    assert fields["password"] | {"minLength": 6, "maxLength": 12} == fields["password"]
    assert fields["username"]["pattern"] == "^[A-Za-z0-9]{5,15}$"
    assert (fields["username"]["minLength"], fields["username"]["maxLength"]) == (5, 15)
    # One character short of the schema's minimum is what the code refuses too.
    refused = api_client.post(REGISTER, password, format="json")
    assert (refused.status_code, refused.json()) == (400, {"password": [PASSWORD_INVALID]})


def test_bodies_the_handlers_need_are_required(schema: dict[str, Any]) -> None:
    # drf-spectacular documents no body on DELETE; erasing oneself takes the password.
    erase = schema["paths"]["/api/auth/me/"]["delete"]["requestBody"]
    otlp = schema["paths"]["/v1/logs"]["post"]["requestBody"]

    assert erase["required"] is True
    assert erase["content"]["application/json"]["schema"]["$ref"].endswith("UserEraseInputRequest")
    assert otlp["required"] is True


def test_an_erasure_without_its_password_is_refused(auth_client: APIClient) -> None:
    response = auth_client.delete("/api/auth/me/")
    assert (response.status_code, list(response.json())) == (400, ["password"])


def test_key_scopes_are_at_least_one_known_scope(
    schema: dict[str, Any], auth_client: APIClient
) -> None:
    scopes = _component(schema, "ApiKeyInputRequest")["properties"]["scopes"]
    enum = _component(schema, scopes["items"]["$ref"].rsplit("/", 1)[1])["enum"]

    assert (scopes["minItems"], enum) == (1, list(SCOPES))
    empty = auth_client.post("/api/auth/keys/", {"name": "k", "scopes": []}, format="json")
    assert (empty.status_code, list(empty.json())) == (400, ["scopes"])


def test_a_batch_holds_at_least_one_message(schema: dict[str, Any], auth_client: APIClient) -> None:
    messages = _component(schema, "BatchPushInputRequest")["properties"]["messages"]

    assert messages["minItems"] == 1
    empty = auth_client.post("/api/pusher/push/batch/", {"messages": []}, format="json")
    assert (empty.status_code, list(empty.json())) == (400, ["messages"])


def test_search_states_its_page_size_and_cursor(schema: dict[str, Any]) -> None:
    page_size = _parameter(schema, "/api/tracker/messages/", "page_size")
    cursor = _parameter(schema, "/api/tracker/messages/", "cursor")

    assert (page_size["minimum"], page_size["maximum"]) == (1, PAGE_SIZE_MAX)
    assert cursor["pattern"] == CURSOR_PATTERN
    assert re.fullmatch(cursor["pattern"], "1765065600000_3fa85f64-5717-4562-b3fc-2c963f66afa6")


def test_stats_state_their_intervals_and_time_zones(schema: dict[str, Any]) -> None:
    interval = _parameter(schema, "/api/tracker/stats/", "interval")
    tz = _parameter(schema, "/api/tracker/stats/", "tz")

    assert interval["enum"] == ["hour", "day", "week", "month"]
    assert tz["enum"] == list(STATS_ZONES)
    assert "UTC" in tz["enum"] and "EST" not in tz["enum"]  # EST: Python knows it, Java not


def test_request_text_states_that_it_holds_no_nul(schema: dict[str, Any]) -> None:
    # DRF refuses a NUL in every string; a generated client should not send one.
    name = _component(schema, "ApiKeyInputRequest")["properties"]["name"]
    assert name["pattern"] == "^[^\\u0000]*$"
