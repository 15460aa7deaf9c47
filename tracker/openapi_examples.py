"""Example requests and answers of the tracker's endpoints, for the OpenAPI schema.

Taken from real answers: the Postman collection's saved ones and a run against a local stack
(the export and the tail); the ticket is a placeholder.
"""

import json

from core.openapi import (
    EXAMPLE_REQUEST_ID,
    EXAMPLE_USER_ID,
    FAKE_SECRET,
    request_example,
    response_example,
)

_MESSAGE_ID = "04007bbd-839a-4fbe-8fb3-81640fcd2b3d"
# A message as the tracker stores it, after the validator's one attempt.
_MESSAGE = {
    "message_id": _MESSAGE_ID,
    "user_id": EXAMPLE_USER_ID,
    "user_message": "HelloWorld from checkout-service",
    "request_count": 1,
    "category": "Direct",
    "created_time": "2026-12-07T01:22:54.445571Z",
    "tracked_time": "2026-12-07T01:22:54.537806Z",
    "request_id": EXAMPLE_REQUEST_ID,
    "attempts": [{"random_number": 57, "at": "2026-12-07T01:22:54.492050Z"}],
    "random_numbers": [57],
}
# As the export and the tail write it: compact JSON.
_MESSAGE_JSON = json.dumps(_MESSAGE, separators=(",", ":"))
_CATEGORIES = ("Direct", "Retried", "Failed")
_SEVERITIES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "UNSET")


def _indexed(index: int, message_id: str) -> dict[str, int | str]:
    return {"index": index, "message_id": message_id, "status": "indexed"}


BULK = [
    request_example(
        {
            "messages": [
                {"user_message": "Bulk one"},
                {"user_message": "   "},
                {"user_message": "Bulk two", "category": "Failed", "request_count": 2},
            ]
        }
    ),
    response_example(
        {
            "indexed": 2,
            "failed": 1,
            "items": [
                _indexed(0, "d78e831b-b68a-49ad-aacc-63f8f68414e0"),
                {
                    "index": 1,
                    "status": "failed",
                    "errors": ["user_message: The message must not be blank."],
                },
                _indexed(2, "8be2b2c0-ba8c-44c0-a26d-3a57cb9bbb91"),
            ],
        }
    ),
]
SEARCH = [response_example({"count": 1, "next": None, "results": [_MESSAGE]})]
TRACK = [
    request_example(
        {"user_message": "Tracked directly", "category": "Retried", "request_count": 7}
    ),
    response_example(
        {
            "message_id": "1ec4bb6a-26df-411e-9975-aa26290392f1",
            "user_id": EXAMPLE_USER_ID,
            "user_message": "Tracked directly",
            "request_count": 7,
            "category": "Retried",
            "created_time": "2026-12-07T01:22:55.361886Z",
            "tracked_time": "2026-12-07T01:22:55.361886Z",
            "request_id": "7061feceb8165c77b6fee2042b4e9d85",
        },
        status=201,
    ),
]
DETAIL = [response_example(_MESSAGE)]


def _counts(names: tuple[str, ...], counted: str) -> dict[str, int]:
    return {**{name: int(name == counted) for name in names}, "total": 1}


def _day(names: tuple[str, ...], date: str, counted: str = "") -> dict[str, int | str]:
    return {"date": date, **_counts(names, counted), "total": int(bool(counted))}


_RANGE = {"from": "2026-12-06T00:00:00Z", "to": "2026-12-07T23:59:59Z"}
STATS = [
    response_example(
        {
            "interval": "day",
            "tz": "UTC",
            "totals": _counts(_CATEGORIES, "Direct"),
            "buckets": [_day(_CATEGORIES, "2026-12-06"), _day(_CATEGORIES, "2026-12-07", "Direct")],
            **_RANGE,
        },
        name="By category",
    ),
    response_example(
        {
            "interval": "day",
            "tz": "UTC",
            "totals": _counts(_SEVERITIES, "ERROR"),
            "buckets": [_day(_SEVERITIES, "2026-12-06"), _day(_SEVERITIES, "2026-12-07", "ERROR")],
            "split": "severity",
            "series": [
                {"name": "TRACE", "query": "severity:[1 TO 4]"},
                {"name": "DEBUG", "query": "severity:[5 TO 8]"},
                {"name": "INFO", "query": "severity:[9 TO 12]"},
                {"name": "WARN", "query": "severity:[13 TO 16]"},
                {"name": "ERROR", "query": "severity:[17 TO 20]"},
                {"name": "FATAL", "query": "severity:[21 TO 24]"},
                {"name": "UNSET", "query": "NOT severity:[1 TO 24]"},
            ],
            **_RANGE,
        },
        name="By severity (split=severity)",
    ),
]
_CSV_HEADER = (
    "message_id,user_id,user_message,request_count,category,created_time,tracked_time,"
    "request_id,random_numbers,severity_text,severity_number,service_name,trace_id,span_id,"
    "attributes,truncated"
)
EXPORT = [
    response_example(_MESSAGE_JSON + "\n", name="NDJSON", media_type="application/x-ndjson"),
    response_example(
        f"{_CSV_HEADER}\r\n{_MESSAGE_ID},{EXAMPLE_USER_ID},HelloWorld from checkout-service,1,"
        "Direct,2026-12-07T01:22:54.445571Z,2026-12-07T01:22:54.537806Z,"
        f"{EXAMPLE_REQUEST_ID},57,,,,,,,\r\n",
        name="CSV",
        media_type="text/csv",
    ),
]
TAIL = [
    response_example(
        'event: live\nid: 1796606574000-0\ndata: {"position": "1796606574000-0"}\n\n'
        f"id: 1796606574537-0\ndata: {_MESSAGE_JSON}\n\n",
        name="Events",
        media_type="text/event-stream",
    )
]
TAIL_TICKET = [
    request_example({"query": "HelloWorld"}),
    response_example({"ticket": FAKE_SECRET, "expires_in": 30}, status=201),
]
