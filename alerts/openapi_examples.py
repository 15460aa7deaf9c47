"""Example requests and answers of the alerts endpoints, for the OpenAPI schema.

Taken from the Postman collection's saved answers (a run against `make up`).
"""

from alerts.selectors import CHANNEL_NOT_FOUND, RULE_NOT_FOUND
from core.openapi import error_example, request_example, response_example

_CHANNEL_ID = "31e44e5e-8b85-42a0-b4b2-bb06f738a425"
_RULE_ID = "002f0964-efdc-4c5b-80ea-76f25ff02e91"
_CHANNEL_IN = {"name": "ops mail", "type": "email", "to": "ops@example.com"}
_CHANNEL = {
    "id": _CHANNEL_ID,
    **_CHANNEL_IN,
    "url": "",
    "has_secret": False,
    "created": "2026-12-07T01:22:55.913540Z",
}
_RULE_IN = {
    "name": "checkout errors",
    "query": '"payment declined"',
    "condition": {"type": "count", "threshold": 5, "window_s": 300},
    "repeat_s": 3600,
}
_RULE = {
    "id": _RULE_ID,
    **_RULE_IN,
    "condition": {"type": "count", "threshold": 5, "below": False, "window_s": 300},
    "channels": [_CHANNEL_ID],
    "muted_until": None,
    "state": "firing",
    "last_fired": "2026-12-07T01:22:58.066248Z",
    "last_evaluated": "2026-12-07T01:22:58.066248Z",
    "last_count": 7,
    "created": "2026-12-07T01:22:55.945360Z",
}

CHANNELS_LIST = [response_example(_CHANNEL)]
CHANNEL_CREATE = [request_example(_CHANNEL_IN), response_example(_CHANNEL, status=201)]
CHANNEL_GET = [response_example(_CHANNEL)]
CHANNEL_REPLACE = [request_example(_CHANNEL_IN), response_example(_CHANNEL)]
CHANNEL_CHANGE = [
    request_example({"name": "ops mail (night)"}),
    response_example({**_CHANNEL, "name": "ops mail (night)"}),
]
CHANNEL_DELETE = [error_example(CHANNEL_NOT_FOUND, "not_found", status=404, name="Unknown channel")]
CHANNEL_TEST = [response_example({"ok": True, "status": None, "error": ""}, name="Mail sent")]

RULES_LIST = [response_example(_RULE)]
# `channels` left out: a rule may only name channels of yours, and the ids here are examples.
RULE_CREATE = [
    request_example(_RULE_IN),
    response_example(
        {
            **_RULE,
            "channels": [],
            "state": "ok",
            "last_fired": None,
            "last_evaluated": None,
            "last_count": None,
        },
        status=201,
    ),
]
RULE_GET = [response_example(_RULE)]
RULE_REPLACE = [request_example(_RULE_IN), response_example(_RULE)]
RULE_CHANGE = [
    request_example({"muted_until": "2026-12-08T08:00:00Z"}, summary="Mute until morning"),
    response_example({**_RULE, "muted_until": "2026-12-08T08:00:00Z"}),
]
RULE_DELETE = [error_example(RULE_NOT_FOUND, "not_found", status=404, name="Unknown rule")]
RULE_EVENTS = [
    response_example(
        {
            "id": 635,
            "kind": "delivery",
            "state": "firing",
            "outcome": "delivered",
            "channel": _CHANNEL_ID,
            "channel_name": "ops mail",
            "status_code": None,
            "error": "",
            "attempt": 1,
            "count": 7,
            "summary": "[FIRING] checkout errors: 7 matches in the last 5m (threshold: at least 5)",
            "at": "2026-12-07T01:22:58.121481Z",
        }
    )
]
