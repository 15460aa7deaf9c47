"""Example requests and answers of the shippers' doors, for the OpenAPI schema.

The handshakes' answers come from the selectors that give them, so they cannot drift; the bulk
and Loki examples are the Postman collection's saved ones.
"""

import re
from typing import Any

from drf_spectacular.utils import OpenApiExample

from core.openapi import request_example, response_example
from shippers import selectors

_SETUP_NAME = "filebeat-8.19.0"
# What a shipper PUTs before it ships, per kind: acknowledged, then ignored.
_SETUP_BODIES: dict[str, Any] = {
    "_index_template": {"index_patterns": ["filebeat-*"], "priority": 150},
    "_component_template": {"template": {"settings": {"number_of_shards": 1}}},
    "_template": {"index_patterns": ["filebeat-*"], "order": 1},
    "_ilm/policy": {"policy": {"phases": {"hot": {"actions": {"rollover": {"max_age": "30d"}}}}}},
    "_ingest/pipeline": {"description": "filebeat", "processors": []},
}
_PROBES = {
    "": selectors.cluster_info,
    "_license": selectors.license_info,
    "_nodes": selectors.nodes_info,
    "_nodes/{rest}": selectors.nodes_info,
    "_cluster/health": selectors.cluster_health,
}


def handshake_examples(*, path: str, method: str) -> list[OpenApiExample]:
    """The examples of the handshake at schema path `path` (with or without `/es`)."""
    route = re.sub(r"^/(es/)?", "", path)
    if route in _PROBES:
        answer = _PROBES[route]()
        if route == "":
            answer = {**answer, "name": "logger-web-1"}  # the host's name, not this machine's
        return [response_example(answer)]
    kind = route.removesuffix("/{name}")
    if kind not in _SETUP_BODIES:
        return []  # the bulk and Loki doors: their examples are in their own decorators
    if method == "PUT":
        return [request_example(_SETUP_BODIES[kind]), response_example({"acknowledged": True})]
    return [response_example(selectors.setup_resource(kind=kind, name=_SETUP_NAME))]


BULK = [
    request_example(
        '{"create": {"_index": "app-logs"}}\n'
        '{"message": "payment declined", "log": {"level": "warn"}, '
        '"service": {"name": "checkout"}}\n'
        '{"create": {"_index": "app-logs"}}\n'
        '{"no_message": true}\n',
        name="NDJSON",
        # Under application/json, as many shippers send it: schemathesis's examples phase sends
        # every request example, and has no serializer for application/x-ndjson (it errs on one).
        media_type="application/json",
        summary="The NDJSON text is the body",
    ),
    response_example(
        {
            "took": 1,
            "errors": True,
            "items": [
                {
                    "create": {
                        "_index": "app-logs",
                        "_id": "b722f42f-52fe-4d90-9b99-dff858e010f8",
                        "_version": 1,
                        "result": "created",
                        "status": 201,
                    }
                },
                {
                    "create": {
                        "_index": "app-logs",
                        "_id": None,
                        "status": 400,
                        "error": {
                            "type": "document_parsing_exception",
                            "reason": "message: none of the fields message, msg, log, "
                            "event.original holds the message.",
                        },
                    }
                },
            ],
        },
        summary="The second document has no message",
    ),
]

LOKI_PUSH = [
    request_example(
        {
            "streams": [
                {
                    "stream": {"service_name": "checkout", "env": "dev", "level": "error"},
                    "values": [["1796606575000000000", "payment declined"]],
                }
            ]
        },
        name="JSON",
        media_type="application/json",
    ),
    # 204 has no body to show: the example answer is the one with a body, an entry refused.
    response_example(
        "1 of 2 entries refused; first: message: the log record's body is empty or blank.\n",
        status=400,
        name="Refused entry",
        media_type="text/plain",
    ),
]
