"""Real OpenTelemetry clients against the running stack: Python's logging and Node.js's SDK.

Python: stdlib `logging` -> the SDK's `LoggingHandler` -> `BatchLogRecordProcessor` -> the
OTLP/HTTP exporter (protobuf, gzip), 10,000 records. Node.js: the official JavaScript SDK and
its OTLP/HTTP exporter (JSON). Every record must be tracked exactly once, with its severity,
service name and trace id searchable.
"""

import json
import logging
import os
import subprocess
import uuid
from pathlib import Path

import requests
from browser_config import BASE_URL
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
PYTHON_RECORDS = 10_000
JS_RECORDS = 500
TRACKED_WITHIN_SECONDS = 240


def _auth() -> dict[str, str]:
    # A key with the push and read scopes when the stack offers keys, else the run's JWT.
    key = os.environ.get("E2E_API_KEY")
    if key:
        return {"Authorization": f"Bearer {key}"}
    return {"Authorization": f"Bearer {os.environ['E2E_ACCESS_TOKEN']}"}


def _search(**params: object) -> dict:
    response = requests.get(
        f"{BASE_URL}/api/tracker/messages/", params=params, headers=_auth(), timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def _export(**params: object) -> list[dict]:
    response = requests.get(
        f"{BASE_URL}/api/tracker/messages/export/", params=params, headers=_auth(), timeout=300
    )
    assert response.status_code == 200, response.text
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert int(response.headers["X-Total-Count"]) == len(rows)
    return rows


def _tracked(service: str, expected: int) -> int:
    count = _search(service=service, page_size=1)["count"]
    return count if count >= expected else 0


def test_python_logging_through_the_official_sdk_is_tracked_exactly_once() -> None:
    run = uuid.uuid4().hex[:10]
    service = f"e2e-python-{run}"
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPLogExporter(
        endpoint=f"{BASE_URL}/v1/logs", headers=_auth(), compression=Compression.Gzip
    )
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    log = logging.getLogger(f"e2e.otlp.{run}")
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    log.setLevel(logging.INFO)
    log.propagate = False
    tracer = TracerProvider().get_tracer("e2e")

    with tracer.start_as_current_span("checkout") as span:
        log.error("py %s traced failure", run)
        trace_id = format(span.get_span_context().trace_id, "032x")
    for i in range(PYTHON_RECORDS - 1):
        log.warning("py %s record %d", run, i, extra={"order": i})
        # The SDK's queue holds 2,048 records and drops what overflows it: an application
        # logging 10,000 lines in a tight loop must let the exporter catch up now and then.
        if i % 1_000 == 999:
            provider.force_flush()
    provider.force_flush()
    provider.shutdown()

    wait_for(lambda: _tracked(service, PYTHON_RECORDS), TRACKED_WITHIN_SECONDS, "python records")
    rows = _export(service=service)
    messages = [row["user_message"] for row in rows]
    assert len(messages) == len(set(messages)) == PYTHON_RECORDS  # exactly once each
    assert set(messages) == {f"py {run} traced failure"} | {
        f"py {run} record {i}" for i in range(PYTHON_RECORDS - 1)
    }
    assert {row["service_name"] for row in rows} == {service}
    errors = _search(service=service, severity_min=17)
    assert errors["count"] == 1
    (failure,) = errors["results"]
    assert (failure["severity_text"], failure["trace_id"]) == ("ERROR", trace_id)
    assert _search(trace_id=trace_id)["count"] == 1
    assert _search(service=service, attribute="order:42")["count"] == 1


def test_the_javascript_sdk_exporter_with_json_is_tracked_too() -> None:
    run = uuid.uuid4().hex[:10]
    service = f"e2e-node-{run}"
    header = "&".join(f"{name}={value}" for name, value in _auth().items())
    subprocess.run(
        ["node", "e2e/otlp/export_logs.mjs"],
        cwd=ROOT,
        env={
            **os.environ,
            "OTLP_BASE_URL": BASE_URL,
            "OTLP_HEADERS": header.replace("&", ","),
            "OTLP_SERVICE": service,
            "OTLP_RUN": run,
            "OTLP_COUNT": str(JS_RECORDS),
        },
        check=True,
        timeout=120,
    )

    wait_for(lambda: _tracked(service, JS_RECORDS), TRACKED_WITHIN_SECONDS, "node records")
    rows = _export(service=service)
    assert sorted(row["user_message"] for row in rows) == sorted(
        f"js {run} record {i}" for i in range(JS_RECORDS)
    )
    assert {(row["severity_number"], row["severity_text"]) for row in rows} == {(13, "WARN")}
    assert f"e2e.run:{run}" in rows[0]["attributes"]
