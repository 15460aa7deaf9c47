"""Every log line carries the request id, including Django's own response lines."""

import json
import logging

from core.logging import RequestIdFilter


def test_django_request_lines_carry_the_request_id(api_client, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = api_client.post(
            "/api/pusher/push/", {"message": "x"}, format="json", HTTP_X_REQUEST_ID="trace-401"
        )

    assert response.status_code == 401
    [record] = [r for r in caplog.records if r.name == "django.request"]
    RequestIdFilter().filter(record)
    assert record.request_id == "trace-401"


def test_the_json_formatter_writes_one_object_per_line(settings):
    from pythonjsonlogger.json import JsonFormatter

    spec = settings.LOGGING["formatters"]["json"]
    formatter = JsonFormatter(spec["format"], rename_fields=spec["rename_fields"])
    record = logging.LogRecord("pusher.services", logging.INFO, __file__, 1, "hello", None, None)
    record.request_id, record.message_id = "r1", "m1"

    line = json.loads(formatter.format(record))

    assert (line["level"], line["logger"], line["message"]) == ("INFO", "pusher.services", "hello")
    assert (line["request_id"], line["message_id"]) == ("r1", "m1")
