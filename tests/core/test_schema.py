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
from core.schema import NO_NUL_NON_EMPTY_PATTERN, NOT_BLANK_PATTERN
from tracker.query import QUERY_MAX_LENGTH
from tracker.selectors import CURSOR_PATTERN, INTERVALS, PAGE_SIZE_MAX, STATS_ZONES

REGISTER = "/api/auth/register/"

pytestmark = pytest.mark.django_db  # alert rules and channels are rows


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
    assert schema["paths"]["/api/pusher/push/batch/"]["post"]["requestBody"]["required"] is True


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

    assert interval["enum"] == list(INTERVALS)
    assert tz["enum"] == list(STATS_ZONES)
    assert "UTC" in tz["enum"] and "EST" not in tz["enum"]  # EST: Python knows it, Java not


@pytest.mark.parametrize(
    ("text", "stated"), [("a", True), ("  a ", True), (" \t\u3000", False), ("a\x00", False)]
)
def test_request_text_states_no_nul_and_not_only_whitespace(
    schema: dict[str, Any], auth_client: APIClient, text: str, stated: bool
) -> None:
    # DRF refuses a NUL in every string, and trims a name to nothing when it is all spaces.
    name = _component(schema, "ApiKeyInputRequest")["properties"]["name"]
    query = _component(schema, "TailTicketInputRequest")["properties"]["query"]

    assert name["pattern"] == NOT_BLANK_PATTERN
    # Blank allowed: "" matches the second branch only, as oneOf needs.
    assert query["oneOf"] == [
        {"type": "string", "pattern": NO_NUL_NON_EMPTY_PATTERN, "maxLength": QUERY_MAX_LENGTH},
        {"type": "string", "maxLength": 0},
    ]
    assert bool(re.search(name["pattern"], text)) is stated
    response = auth_client.post(
        "/api/auth/keys/", {"name": text, "scopes": ["read"]}, format="json"
    )
    assert response.status_code == (201 if stated else 400), response.content


def _rule(condition: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "r", "query": "", "condition": condition, **fields}


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        (_rule({"type": "count"}), 400),  # a count needs its threshold: the schema's oneOf
        (_rule({"type": "count", "threshold": 3, "below": 0}), 400),  # 0 is no JSON boolean
        (_rule({"type": "any"}, repeat_s=30), 400),  # 0, or 60 to 604800
        (_rule({"type": "any"}, muted_until="0999-12-31T00:00:00Z"), 400),
        (_rule({"type": "count", "threshold": 3, "below": True}, repeat_s=60), 201),
        (_rule({"type": "any"}, channels=["0b7e7dd2-3e0e-4f55-9c4b-6bd4f7a4d2a1"]), 422),
    ],
)
def test_alert_rules_follow_their_schema_and_unknown_channels_are_a_422(
    schema: dict[str, Any], auth_client: APIClient, rule: dict[str, Any], status: int
) -> None:
    documented = schema["paths"]["/api/alerts/rules/"]["post"]["responses"]
    condition = _component(schema, "AlertRuleInputRequest")["properties"]["condition"]

    response = auth_client.post("/api/alerts/rules/", rule, format="json")

    assert response.status_code == status, response.content
    assert str(status) in documented
    count = next(c for c in condition["oneOf"] if c["properties"]["type"]["enum"] == ["count"])
    assert count["required"] == ["type", "threshold"]


@pytest.mark.parametrize(
    ("channel", "status"),
    [
        ({"name": "c", "type": "webhook", "to": "a@example.com"}, 400),  # needs url, not to
        ({"name": "c", "type": "email", "to": "a@example.com", "secret": "s"}, 400),
        ({"name": "c", "type": "webhook", "url": "ftp://example.com/"}, 400),
        ({"name": "c", "type": "webhook", "url": "http://127.0.0.1/hook"}, 422),  # private
        ({"name": "c", "type": "email", "to": "a@example.com"}, 201),
    ],
)
def test_alert_channels_state_each_types_fields(
    schema: dict[str, Any], auth_client: APIClient, channel: dict[str, Any], status: int
) -> None:
    body = schema["paths"]["/api/alerts/channels/"]["post"]["requestBody"]
    webhook, email = body["content"]["application/json"]["schema"]["oneOf"]

    response = auth_client.post("/api/alerts/channels/", channel, format="json")

    assert response.status_code == status, response.content
    assert (webhook["required"], email["required"]) == (
        ["name", "type", "url"],
        ["name", "type", "to"],
    )
    assert webhook["properties"]["to"]["not"] == {} and email["properties"]["url"]["not"] == {}


def test_a_name_is_at_most_its_length_as_sent(
    schema: dict[str, Any], auth_client: APIClient
) -> None:
    # DRF counted the length after trimming; the schema's maxLength counts what is sent.
    limit = _component(schema, "ApiKeyInputRequest")["properties"]["name"]["maxLength"]
    name = "  " + "n" * (limit - 1)

    response = auth_client.post(
        "/api/auth/keys/", {"name": name, "scopes": ["read"]}, format="json"
    )

    assert (response.status_code, list(response.json())) == (400, ["name"])


_METHODS = ("get", "post", "put", "patch", "delete")


def _examples(content: dict[str, Any]) -> int:
    return sum(len(media.get("examples", {})) for media in content.values())


def _missing_docs(operation: dict[str, Any]) -> list[str]:
    """What an operation lacks of a summary, a request example and a response example."""
    missing = [] if operation.get("summary") else ["summary"]
    body = operation.get("requestBody", {}).get("content", {})
    if body and not _examples(body):
        missing.append("request example")
    responses = operation["responses"]
    # A success with a body shows it; a 204 shows an answer that has one (an error).
    successes = [r.get("content", {}) for code, r in responses.items() if code.startswith("2")]
    if not any(_examples(r.get("content", {})) for r in responses.values()) or any(
        content and not _examples(content) for content in successes
    ):
        missing.append("response example")
    return missing


def test_every_operation_has_a_summary_and_examples(schema: dict[str, Any]) -> None:
    lacking = {
        f"{method.upper()} {path}": missing
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in _METHODS and (missing := _missing_docs(operation))
    }

    assert lacking == {}


def test_an_operation_without_examples_is_named() -> None:
    operation = {
        "summary": "Push",
        "requestBody": {"content": {"application/json": {"schema": {}}}},
        "responses": {"202": {"content": {"application/json": {"schema": {}}}}},
    }

    assert _missing_docs(operation) == ["request example", "response example"]
    assert _missing_docs({"responses": {"204": {}}}) == ["summary", "response example"]
