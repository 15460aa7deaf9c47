"""Example requests and answers of the push endpoints and OTLP, for the OpenAPI schema.

Taken from the Postman collection's saved answers (a run against `make up`).
"""

from core.openapi import EXAMPLE_USER_ID, request_example, response_example
from pusher import otlp

# A fixed id: sent again, the batch example's second message is a duplicate, not a new one.
_BATCH_MESSAGE_ID = "d6f3c3b6-6d27-4e27-908a-cc40b191ffe5"

PUSH = [
    request_example({"message": "HelloWorld from checkout-service"}),
    response_example(
        {
            "status": "queued",
            "message_id": "04007bbd-839a-4fbe-8fb3-81640fcd2b3d",
            "user_id": EXAMPLE_USER_ID,
            "request_count": 1,
        },
        status=202,
    ),
]

# JSON only: schemathesis's examples phase sends every request example, and has no serializer
# for NDJSON (it errs on one); the description shows the NDJSON form.
BATCH = [
    request_example(
        {
            "messages": [
                {"message": "batch one"},
                {"message": "   "},
                {"message": "batch two", "message_id": _BATCH_MESSAGE_ID},
            ]
        },
        name="JSON",
        media_type="application/json",
    ),
    response_example(
        {
            "accepted": 2,
            "rejected": 1,
            "duplicates": 0,
            "items": [
                {
                    "index": 0,
                    "message_id": "9c5477d4-dd27-406e-aacb-b6c70e074611",
                    "request_count": 2,
                    "status": "queued",
                },
                {
                    "index": 1,
                    "status": "rejected",
                    "errors": ["message: The message must not be blank."],
                },
                {
                    "index": 2,
                    "message_id": _BATCH_MESSAGE_ID,
                    "request_count": 3,
                    "status": "queued",
                },
            ],
        },
        status=202,
    ),
]

OTLP_LOGS = [
    request_example(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "checkout"}}
                        ]
                    },
                    "scopeLogs": [
                        {
                            "logRecords": [
                                {
                                    "severityText": "ERROR",
                                    "severityNumber": 17,
                                    "body": {"stringValue": "payment declined"},
                                    "attributes": [
                                        {"key": "http.status", "value": {"intValue": "500"}}
                                    ],
                                }
                            ]
                        }
                    ],
                }
            ]
        },
        name="OTLP/JSON",
        media_type=otlp.JSON,
    ),
    # Every record accepted: OTLP's answer is an empty ExportLogsServiceResponse.
    response_example({}, name="All accepted", media_type=otlp.JSON),
]
