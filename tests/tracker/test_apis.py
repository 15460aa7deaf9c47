"""The tracker HTTP API: status codes, bodies, paging links, scope, limits and outages."""

import json
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.contract import (
    CREATED_OUT_OF_WINDOW,
    DATETIME_OUT_OF_RANGE,
    MESSAGE_BLANK,
    MESSAGE_TOO_LONG,
    NOT_A_STRING,
    TOO_MANY_MESSAGES,
    date_format,
)
from core.exceptions import ELASTICSEARCH_DOWN
from core.serializers import QUERY_PARAMETER_REPEATED
from tests.tracker.support import T0, document, index, minutes, refresh
from tracker.query import Q_TOO_LONG
from tracker.scope import OUT_OF_SCOPE
from tracker.selectors import (
    BAD_CURSOR,
    MESSAGE_NOT_FOUND,
    PAGE_SIZE_INVALID,
    UNKNOWN_TZ,
)

MESSAGES = "/api/tracker/messages/"
BULK = "/api/tracker/messages/bulk/"
STATS = "/api/tracker/stats/"
NOBODY = "00000000-0000-4000-8000-000000000000"
INVALID_UUID = "Must be a valid UUID."
BAD_DATETIME = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)

pytestmark = pytest.mark.usefixtures("clean_index")


def _detail(url: str) -> str:
    return f"{MESSAGES}{url}/"


@pytest.fixture
def bob(make_user: Callable[..., dict]) -> dict:
    """A second ordinary user."""
    return make_user("bobby01")


@pytest.fixture
def bob_client(bob: dict, client_for: Callable[[dict], APIClient]) -> APIClient:
    """Bob's authenticated client."""
    return client_for(bob)


# --- tracking ---------------------------------------------------------------------------


def test_track_returns_201_with_the_stored_document(auth_client: APIClient, user: dict) -> None:
    response = auth_client.post(
        MESSAGES, {"user_message": "Hello", "user_id": NOBODY}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user_id"] == user["user_id"]  # a user always tracks as themselves
    assert (body["user_message"], body["category"], body["request_count"]) == ("Hello", "Direct", 0)
    assert set(body) >= {"message_id", "created_time", "tracked_time"}
    assert body["request_id"] == response["X-Request-ID"]
    got = auth_client.get(_detail(body["message_id"]))
    assert (got.status_code, got.json()) == (200, body)


def test_an_admin_tracks_for_another_user(admin_client: APIClient, bob: dict) -> None:
    response = admin_client.post(
        MESSAGES, {"user_message": "for bob", "user_id": bob["user_id"]}, format="json"
    )
    assert (response.status_code, response.json()["user_id"]) == (201, bob["user_id"])


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"user_message": "  "}, {"user_message": [MESSAGE_BLANK]}),
        ({"user_message": "x" * 5001}, {"user_message": [MESSAGE_TOO_LONG]}),
        ({"user_message": "x", "category": "Odd"}, {"category": ['"Odd" is not a valid choice.']}),
        (["a list"], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        # DRF's UUIDField reads an integer (and so a boolean) as UUID(int=...); ids are strings.
        ({"user_message": "x", "message_id": False}, {"message_id": [INVALID_UUID]}),
        ({"user_message": "x", "user_id": 7}, {"user_id": [INVALID_UUID]}),
        # A JSON number, boolean or list is not a message: DRF's CharField would stringify it.
        ({"user_message": 12345}, {"user_message": [NOT_A_STRING]}),
        ({"user_message": True}, {"user_message": [NOT_A_STRING]}),
        ({"user_message": ["a"]}, {"user_message": [NOT_A_STRING]}),
    ],
)
def test_track_refuses_invalid_messages(auth_client: APIClient, body: object, errors: dict) -> None:
    response = auth_client.post(MESSAGES, body, format="json")
    assert (response.status_code, response.json()) == (400, errors)


def test_track_with_another_users_message_id_is_404_as_documented(
    auth_client: APIClient, bob_client: APIClient
) -> None:
    theirs = bob_client.post(MESSAGES, {"user_message": "bob's"}, format="json").json()
    response = auth_client.post(
        MESSAGES, {"user_message": "mine now", "message_id": theirs["message_id"]}, format="json"
    )
    assert (response.status_code, response.json()["detail"]) == (404, MESSAGE_NOT_FOUND)
    documented = auth_client.get("/api/schema/", {"format": "json"}).json()
    assert "404" in documented["paths"][MESSAGES]["post"]["responses"]
    assert bob_client.get(_detail(theirs["message_id"])).json()["user_message"] == "bob's"


def test_unauthenticated_requests_get_401(api_client: APIClient) -> None:
    for response in (
        api_client.post(MESSAGES, {"user_message": "x"}, format="json"),
        api_client.get(MESSAGES),
        api_client.get(STATS),
        api_client.get(_detail(NOBODY)),
    ):
        assert response.status_code == 401
        assert set(response.json()) == {"detail", "code"}


def test_a_body_that_is_not_json_gets_415(auth_client: APIClient) -> None:
    response = auth_client.post(MESSAGES, "user_message=x", content_type="text/plain")
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")


def test_malformed_json_gets_400(auth_client: APIClient) -> None:
    response = auth_client.post(MESSAGES, "{not json", content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_a_body_over_one_megabyte_gets_413(auth_client: APIClient) -> None:
    body = json.dumps({"user_message": "x", "padding": "p" * (1024 * 1024)})
    response = auth_client.post(MESSAGES, body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")


# --- bulk -------------------------------------------------------------------------------


def test_bulk_of_1000_is_accepted(auth_client: APIClient) -> None:
    messages = [{"user_message": f"bulk {i}"} for i in range(1000)]
    response = auth_client.post(BULK, {"messages": messages}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["indexed"], body["failed"]) == (1000, 0)
    assert body["items"][999]["index"] == 999
    assert set(body["items"][0]) == {"index", "message_id", "status"}
    refresh()
    assert auth_client.get(MESSAGES).json()["count"] == 1000


def test_bulk_of_1001_is_refused(auth_client: APIClient) -> None:
    messages = [{"user_message": "x"}] * 1001
    response = auth_client.post(BULK, {"messages": messages}, format="json")
    assert (response.status_code, response.json()) == (400, {"messages": [TOO_MANY_MESSAGES]})
    refresh()
    assert auth_client.get(MESSAGES).json()["count"] == 0


def test_bulk_names_bad_items_while_the_rest_land(auth_client: APIClient) -> None:
    messages = [{"user_message": "ok"}, {"user_message": ""}, {"user_message": "also ok"}]
    response = auth_client.post(BULK, {"messages": messages}, format="json")
    body = response.json()
    assert (response.status_code, body["indexed"], body["failed"]) == (200, 2, 1)
    assert body["items"][1] == {
        "index": 1,
        "status": "failed",
        "errors": [f"user_message: {MESSAGE_BLANK}"],
    }
    assert [item["status"] for item in body["items"]] == ["indexed", "failed", "indexed"]


@pytest.mark.parametrize("message", [12345, True, ["a"]])
def test_bulk_refuses_a_message_that_is_not_a_string(
    auth_client: APIClient, message: object
) -> None:
    body = {"messages": [{"user_message": message}, {"user_message": "fine"}]}
    response = auth_client.post(BULK, body, format="json")
    assert response.status_code == 200
    report = response.json()
    assert (report["indexed"], report["failed"]) == (1, 1)
    assert report["items"][0] == {
        "index": 0,
        "status": "failed",
        "errors": [f"user_message: {NOT_A_STRING}"],
    }


def test_bulk_refuses_an_id_that_is_not_a_string(auth_client: APIClient) -> None:
    messages = [{"user_message": "x", "message_id": 0}, {"user_message": "y", "user_id": True}]
    body = auth_client.post(BULK, {"messages": messages}, format="json").json()
    assert [item["errors"] for item in body["items"]] == [
        [f"message_id: {INVALID_UUID}"],
        [f"user_id: {INVALID_UUID}"],
    ]


def test_bulk_accepts_a_body_over_one_megabyte(auth_client: APIClient) -> None:
    big = {"messages": [{"user_message": "small"}, {"user_message": "x" * (1024 * 1024)}]}
    response = auth_client.post(BULK, big, format="json")
    assert response.status_code == 200
    assert response.json()["items"][1]["errors"] == [f"user_message: {MESSAGE_TOO_LONG}"]


def test_bulk_body_over_five_megabytes_gets_413(auth_client: APIClient) -> None:
    huge = json.dumps({"messages": [{"user_message": "x" * (5 * 1024 * 1024)}]})
    response = auth_client.post(BULK, huge, content_type="application/json")
    # Over DATA_UPLOAD_MAX_MEMORY_SIZE Django raises RequestDataTooBig before the parser runs.
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "payload_too_large"


def test_bulk_needs_a_list_of_messages(auth_client: APIClient) -> None:
    response = auth_client.post(BULK, {"messages": "nope"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["messages"]


@pytest.mark.parametrize(
    "created_time",
    # Each is valid ISO 8601 but lies outside what a UTC date-time can hold once converted.
    ["0001-01-01T00:00:00.0+00:01", "9999-12-31T23:59:59-00:01"],
)
def test_a_created_time_out_of_range_is_refused_not_a_crash(
    auth_client: APIClient, created_time: str
) -> None:
    message = {"user_message": "old", "created_time": created_time}
    single = auth_client.post(MESSAGES, message, format="json")
    assert (single.status_code, single.json()) == (400, {"created_time": [DATETIME_OUT_OF_RANGE]})
    bulk = auth_client.post(BULK, {"messages": [message, {"user_message": "fine"}]}, format="json")
    assert bulk.status_code == 200, bulk.content
    assert bulk.json()["items"][0]["errors"] == [f"created_time: {DATETIME_OUT_OF_RANGE}"]
    assert [item["status"] for item in bulk.json()["items"]] == ["failed", "indexed"]


@pytest.mark.parametrize("offset", [timedelta(days=3651), timedelta(days=-2)])
def test_a_created_time_outside_the_window_is_refused_alone(
    auth_client: APIClient, offset: timedelta
) -> None:
    # Each month is an index of its own: a client may not make one for any month it likes.
    message = {"user_message": "dated", "created_time": date_format(timezone.now() - offset)}
    expected = CREATED_OUT_OF_WINDOW.format(days=3650)

    single = auth_client.post(MESSAGES, message, format="json")
    bulk = auth_client.post(BULK, {"messages": [message, {"user_message": "fine"}]}, format="json")

    # A 400 like any invalid field, though no schema states a window that moves with the clock.
    assert (single.status_code, single.json()) == (400, {"created_time": [expected]})
    assert bulk.status_code == 200, bulk.content
    assert bulk.json()["items"][0]["errors"] == [f"created_time: {expected}"]
    assert [item["status"] for item in bulk.json()["items"]] == ["failed", "indexed"]


def test_the_window_follows_the_setting(auth_client: APIClient, settings) -> None:
    settings.TRACKER_MAX_AGE_DAYS = 10

    def track(days_ago: int) -> int:
        created = date_format(timezone.now() - timedelta(days=days_ago))
        message = {"user_message": "x", "created_time": created}
        response = auth_client.post(MESSAGES, message, format="json")
        return response.status_code

    assert (track(9), track(11)) == (201, 400)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (MESSAGES, {"from": "0001-01-01T00:00:00+00:01"}),
        (MESSAGES, {"to": "9999-12-31T23:59:59-00:01"}),
        (STATS, {"from": "0001-01-01T00:00:00+00:01"}),
        (STATS, {"to": "0001-01-02"}),  # the default `from` is 30 days before `to`
        (STATS, {"from": "9999-12-31", "tz": "Pacific/Kiritimati"}),
    ],
)
def test_a_bound_out_of_range_is_refused_not_a_crash(
    auth_client: APIClient, url: str, params: dict
) -> None:
    response = auth_client.get(url, params)
    assert response.status_code == 400, response.content
    (field,) = set(params) - {"tz"}
    assert response.json() == {field: [DATETIME_OUT_OF_RANGE]}


# --- search -----------------------------------------------------------------------------


def test_search_pages_follow_next_links_with_the_same_filters(
    auth_client: APIClient, user: dict
) -> None:
    index(
        *(
            document(
                user_id=user["user_id"], user_message=f"Alpha {i}", created_time=T0 + minutes(i)
            )
            for i in range(5)
        ),
        document(user_id=user["user_id"], user_message="beta", created_time=T0 + minutes(9)),
    )
    response = auth_client.get(MESSAGES, {"q": "ALPHA", "page_size": 2})
    body = response.json()
    assert (response.status_code, body["count"]) == (200, 5)
    assert [r["user_message"] for r in body["results"]] == ["Alpha 4", "Alpha 3"]
    seen = [r["user_message"] for r in body["results"]]
    while body["next"]:
        link = urlparse(body["next"])
        assert link.scheme == "http" and link.netloc == "testserver"
        assert parse_qs(link.query)["q"] == ["ALPHA"]
        body = auth_client.get(body["next"]).json()
        seen += [r["user_message"] for r in body["results"]]
    assert seen == ["Alpha 4", "Alpha 3", "Alpha 2", "Alpha 1", "Alpha 0"]


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"page_size": 501}, {"page_size": [PAGE_SIZE_INVALID]}),
        ({"q": "x" * 257}, {"q": [Q_TOO_LONG]}),
        ({"cursor": "forged"}, {"cursor": [BAD_CURSOR]}),
        ({"category": "Lost"}, {"category": ['"Lost" is not a valid choice.']}),
        ({"from": "yesterday"}, {"from": [BAD_DATETIME]}),
    ],
)
def test_search_refuses_bad_parameters(auth_client: APIClient, params: dict, errors: dict) -> None:
    response = auth_client.get(MESSAGES, params)
    assert (response.status_code, response.json()) == (400, errors)


def test_a_user_sees_only_their_own_messages(
    auth_client: APIClient, bob_client: APIClient, user: dict, bob: dict
) -> None:
    mine, theirs = index(
        document(user_id=user["user_id"], user_message="mine"),
        document(user_id=bob["user_id"], user_message="theirs"),
    )
    body = auth_client.get(MESSAGES).json()
    assert [r["message_id"] for r in body["results"]] == [mine["message_id"]]
    refused = auth_client.get(MESSAGES, {"user_id": bob["user_id"]})
    assert (refused.status_code, refused.json()) == (
        403,
        {"detail": OUT_OF_SCOPE, "code": "permission_denied"},
    )
    hidden = auth_client.get(_detail(theirs["message_id"]))
    assert (hidden.status_code, hidden.json()) == (
        404,
        {"detail": MESSAGE_NOT_FOUND, "code": "not_found"},
    )
    assert bob_client.get(_detail(theirs["message_id"])).status_code == 200
    stats = auth_client.get(STATS, {"from": "2024-01-01", "to": "2024-01-02"}).json()
    assert stats["totals"]["total"] == 1


def test_an_admin_sees_everyone_and_filters_by_user(
    admin_client: APIClient, user: dict, bob: dict
) -> None:
    index(document(user_id=user["user_id"]), document(user_id=bob["user_id"]))
    assert admin_client.get(MESSAGES).json()["count"] == 2
    assert admin_client.get(MESSAGES, {"user_id": bob["user_id"]}).json()["count"] == 1
    stats = admin_client.get(
        STATS, {"from": "2024-01-01", "to": "2024-01-02", "user_id": bob["user_id"]}
    )
    assert stats.json()["totals"]["total"] == 1


def test_detail_of_an_unknown_or_malformed_id_is_404(auth_client: APIClient) -> None:
    assert auth_client.get(_detail(NOBODY)).json() == {
        "detail": MESSAGE_NOT_FOUND,
        "code": "not_found",
    }
    assert auth_client.get(_detail("not-a-uuid")).status_code == 404


# --- stats ------------------------------------------------------------------------------


def test_stats_body_has_the_spec_shape(auth_client: APIClient, user: dict) -> None:
    index(document(user_id=user["user_id"], category="Retried", created_time=T0 + minutes(90)))
    response = auth_client.get(
        STATS, {"from": "2024-01-01T00:00:00Z", "to": "2024-01-01T02:00:00Z", "interval": "hour"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "interval": "hour",
        "tz": "UTC",
        "from": "2024-01-01T00:00:00Z",
        "to": "2024-01-01T02:00:00Z",
        "totals": {"Direct": 0, "Retried": 1, "Failed": 0, "total": 1},
        "buckets": [
            {
                "date": "2024-01-01T00:00:00+00:00",
                "Direct": 0,
                "Retried": 0,
                "Failed": 0,
                "total": 0,
            },
            {
                "date": "2024-01-01T01:00:00+00:00",
                "Direct": 0,
                "Retried": 1,
                "Failed": 0,
                "total": 1,
            },
            {
                "date": "2024-01-01T02:00:00+00:00",
                "Direct": 0,
                "Retried": 0,
                "Failed": 0,
                "total": 0,
            },
        ],
    }


def test_stats_refuse_an_unknown_time_zone(auth_client: APIClient) -> None:
    response = auth_client.get(STATS, {"tz": "Nowhere/City"})
    assert (response.status_code, response.json()) == (400, {"tz": [UNKNOWN_TZ]})


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (MESSAGES, "user_id"),
        (MESSAGES, "severity_min"),
        (MESSAGES, "trace_id"),
        (MESSAGES, "service"),
        ("/api/tracker/messages/export/", "user_id"),
        (STATS, "user_id"),
        (STATS, "interval"),
        (STATS, "tz"),
    ],
)
def test_an_empty_query_parameter_is_checked_not_dropped(
    auth_client: APIClient, url: str, name: str
) -> None:
    # `user_id=` is no UUID: it used to pass as no filter at all, as an HTML form's empty field.
    response = auth_client.get(f"{url}?{name}=")

    assert response.status_code == 400
    assert list(response.json()) == [name]


@pytest.mark.parametrize("url", [MESSAGES, STATS])
def test_from_after_to_is_a_400_which_the_schema_documents(
    auth_client: APIClient, url: str
) -> None:
    # A rule between two parameters, which no schema states: the contract's 400, documented.
    response = auth_client.get(url, {"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"})

    assert (response.status_code, list(response.json())) == (400, ["from"])
    documented = auth_client.get("/api/schema/", {"format": "json"}).json()
    assert "`from` after `to`" in documented["paths"][url]["get"]["responses"]["400"]["description"]


# --- outages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", MESSAGES, {"user_message": "x"}),
        ("post", BULK, {"messages": [{"user_message": "x"}]}),
        ("get", MESSAGES, None),
        ("get", _detail(NOBODY), None),
        ("get", STATS, None),
    ],
)
def test_elasticsearch_down_is_503(
    auth_client: APIClient, es_down: None, method: str, url: str, body: dict | None
) -> None:
    response = getattr(auth_client, method)(url, body, format="json")
    assert response.status_code == 503
    assert response.json() == {"detail": ELASTICSEARCH_DOWN, "code": "dependency_unavailable"}
    assert response["Retry-After"] == "5"


def test_a_json_null_body_gets_the_usual_error_shape(auth_client: APIClient) -> None:
    response = auth_client.post("/api/tracker/messages/", "null", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["No data provided"]}


def test_search_filters_opentelemetry_logs_by_service_severity_and_attribute(
    auth_client: APIClient, user: dict
) -> None:
    mine = {"user_id": user["user_id"]}
    error = document(
        **mine,
        user_message="payment declined",
        service_name="checkout",
        severity_number=17,
        severity_text="ERROR",
        attributes=["http.method:POST", "region:eu"],
    )
    info = document(
        **mine,
        user_message="payment ok",
        service_name="checkout",
        severity_number=9,
        attributes=["http.method:GET"],
    )
    other = document(**mine, user_message="from web", service_name="web", severity_number=17)
    plain = document(**mine, user_message="a plain push")
    index(error, info, other, plain)

    def found(**query: object) -> set[str]:
        response = auth_client.get(MESSAGES, query)
        assert response.status_code == 200, response.json()
        return {item["user_message"] for item in response.json()["results"]}

    assert found(service="checkout") == {"payment declined", "payment ok"}
    assert found(severity_min=17) == {"payment declined", "from web"}
    assert found(service="checkout", severity_min=13) == {"payment declined"}
    assert found(attribute="http.method:POST") == {"payment declined"}
    assert found(attribute="http.method") == set()  # key:value, never the key alone
    assert found() == {"payment declined", "payment ok", "from web", "a plain push"}
    shown = auth_client.get(MESSAGES, {"attribute": "region:eu"}).json()["results"][0]
    assert (shown["severity_text"], shown["attributes"]) == (
        "ERROR",
        ["http.method:POST", "region:eu"],
    )
    assert auth_client.get(MESSAGES, {"severity_min": 25}).status_code == 400


def test_search_finds_a_log_by_its_trace_id(auth_client: APIClient, user: dict) -> None:
    trace = "5b8efff798038103d269b633813fc60c"
    index(
        document(user_id=user["user_id"], user_message="in the trace", trace_id=trace),
        document(user_id=user["user_id"], user_message="elsewhere", trace_id="0" * 32),
    )

    found = auth_client.get(MESSAGES, {"trace_id": trace.upper()}).json()

    assert [item["user_message"] for item in found["results"]] == ["in the trace"]
    assert auth_client.get(MESSAGES, {"trace_id": "not-hex"}).status_code == 400


def test_a_query_parameter_given_twice_is_refused_not_the_last_one_taken(
    auth_client: APIClient,
) -> None:
    # The schema states one value; Django's QueryDict would hand on the last of several.
    response = auth_client.get(f"{MESSAGES}?page_size=x&page_size=5")

    assert (response.status_code, response.json()) == (
        400,
        {"page_size": [QUERY_PARAMETER_REPEATED]},
    )
