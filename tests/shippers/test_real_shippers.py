"""Real shippers into a real gunicorn and qcluster: every line tracked once, findable by query.

The official `elasticsearch` client's `helpers.streaming_bulk` (its product check on), the
`python-logging-loki` handler (JSON), a protobuf+snappy push built from Loki's push.proto, and
Debian's syslog-ng with its `elasticsearch-http()` destination reading a file of lines.
"""

import logging
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cramjam
import httpx
import logging_loki
import pytest
from elasticsearch import Elasticsearch, helpers
from rest_framework.test import APIClient

from shippers.loki import PushRequest
from tests.pipeline.conftest import tracked_documents
from tests.shippers.conftest import key_parts
from tests.support.processes import answers, free_port, process_group_stop
from tests.support.syslog_ng import SyslogNg
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPTED = {"VALIDATOR_RANDOM_SOURCE": "tests.support.sources.scripted", "RANDOM_ATTEMPT_1": "7"}
TRACKED_SECONDS = 90

pytestmark = pytest.mark.usefixtures("clean_index")


@pytest.fixture(scope="module")
def web(es_index: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gunicorn on config.wsgi with the test settings, on a free port: the shippers' server."""
    port = free_port()
    folder = tmp_path_factory.mktemp("web")
    log = (folder / "gunicorn.log").open("w")
    # The first draw is scripted to 7, so every message is Direct and tracked at once.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **SCRIPTED}
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
    options = ["--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "30"]
    proc = subprocess.Popen(
        [*command, *options, "--control-socket", str(folder / "gunicorn.ctl")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or answers(url), 60, "gunicorn")
        assert proc.poll() is None, Path(log.name).read_text()
        yield url
    finally:
        process_group_stop(proc, grace=10)
        log.close()


@pytest.fixture
def pipeline(qcluster) -> None:
    """A queue cluster that validates and tracks what the doors push."""
    qcluster(**SCRIPTED)


def _reader(key: dict) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key['key']}")
    return client


def _search(key: dict, query: str) -> dict:
    response = _reader(key).get("/api/tracker/messages/", {"query": query, "page_size": 500})
    assert response.status_code == 200, response.content
    return response.json()


def _tracked_once(expected: list[str], shipper: subprocess.Popen | None = None) -> dict[str, dict]:
    """Wait until every expected line is searchable; each must be tracked exactly once.

    A `shipper` process that exits meanwhile ends the wait at once.
    """

    def _all() -> bool:
        if shipper is not None and shipper.poll() is not None:
            return True
        texts = Counter(doc["user_message"] for doc in tracked_documents().values())
        return all(texts[line] >= 1 for line in expected)

    wait_for(_all, TRACKED_SECONDS, f"{len(expected)} lines tracked", interval=0.5)
    assert shipper is None or shipper.poll() is None, "the shipper exited"
    docs = tracked_documents()
    counts = Counter(doc["user_message"] for doc in docs.values())
    assert {line: counts[line] for line in expected} == dict.fromkeys(expected, 1)
    return {doc["user_message"]: doc for doc in docs.values()}


def test_elasticsearch_clients_streaming_bulk(web, pipeline, push_key, user):
    es = Elasticsearch(web, api_key=key_parts(push_key), request_timeout=30)
    assert es.info()["version"]["number"].startswith("8.")  # the product check passes
    run = uuid.uuid4().hex[:8]
    lines = [f"es {run} order {n}" for n in range(1200)]
    actions = (
        {
            "_op_type": "create",
            "_index": "shop-logs",
            "_source": {
                "message": line,
                "@timestamp": "2026-01-02T03:04:05.006Z" if n == 0 else None,
                "log": {"level": "error" if n % 2 else "info"},
                "service": {"name": "checkout"},
                "order": {"id": n},
            },
        }
        for n, line in enumerate(lines)
    )

    results = list(helpers.streaming_bulk(es, actions, chunk_size=500))

    assert len(results) == len(lines)
    assert all(ok and item["create"]["status"] == 201 for ok, item in results)
    docs = _tracked_once(lines)
    first = docs[lines[0]]
    assert first["created_time"] == "2026-01-02T03:04:05.006000Z"
    assert (first["severity_text"], first["severity_number"]) == ("info", 9)
    assert first["service_name"] == "checkout"
    assert set(first["attributes"]) == {"_index:shop-logs", "order.id:0"}
    assert set(docs[lines[1]]["attributes"]) == {"_index:shop-logs", "order.id:1"}
    found = _search(
        push_key, f'service:checkout AND severity:error AND attributes._index:shop-logs AND "{run}"'
    )
    assert found["count"] == len(lines) // 2
    assert _search(push_key, f'attributes.order.id:7 AND "{run}"')["count"] == 1


def test_python_logging_loki_json(web, pipeline, push_key):
    key_id, secret = key_parts(push_key)
    handler = logging_loki.LokiHandler(
        url=f"{web}/loki/api/v1/push",
        tags={"service_name": "billing", "env": "test"},
        auth=(key_id, secret),
        version="1",
    )
    log = logging.getLogger(f"tests.loki.{uuid.uuid4().hex}")
    log.addHandler(handler)
    log.propagate = False
    run = uuid.uuid4().hex[:8]
    lines = [f"loki {run} invoice {n}" for n in range(20)]

    for line in lines:
        log.warning(line, extra={"tags": {"invoice": line[-2:].strip()}})

    docs = _tracked_once(lines)
    doc = docs[lines[3]]
    assert doc["service_name"] == "billing"
    assert doc["severity_number"] == 13  # the handler's `severity` label
    assert "env:test" in doc["attributes"]
    assert "invoice:3" in doc["attributes"]
    assert _search(push_key, f'service:billing AND attributes.env:test AND "{run}"')["count"] == 20


def test_loki_protobuf_with_snappy(web, pipeline, push_key):
    run = uuid.uuid4().hex[:8]
    lines = [f"promtail {run} line {n}" for n in range(50)]
    request = PushRequest()
    stream = request.streams.add(labels='{job="varlogs", host="web-1"}')
    start = time.time_ns()
    for n, line in enumerate(lines):
        entry = stream.entries.add(line=line)
        stamp = start + n * 1_000_000
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(stamp, 1_000_000_000)
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))

    response = httpx.post(
        f"{web}/loki/api/v1/push",
        content=body,
        headers={
            "Content-Type": "application/x-protobuf",
            "Authorization": f"Bearer {push_key['key']}",
        },
    )

    assert response.status_code == 204, response.text
    docs = _tracked_once(lines)
    assert docs[lines[0]]["service_name"] == "varlogs"
    assert docs[lines[0]]["created_time"] < docs[lines[1]]["created_time"]
    assert (
        _search(push_key, f'service:varlogs AND attributes.host:web-1 AND "{run}"')["count"] == 50
    )


@pytest.fixture
def syslog_ng(tmp_path: Path) -> Iterator[SyslogNg]:
    """Debian's syslog-ng, stopped after the test."""
    shipper = SyslogNg(tmp_path)
    yield shipper
    shipper.stop()


def test_syslog_ng_elasticsearch_http(web, pipeline, push_key, syslog_ng):
    run = uuid.uuid4().hex[:8]
    lines = [f"syslog-ng {run} event {n}" for n in range(300)]

    proc = syslog_ng.ship(lines=lines, url=web, key=push_key, service="filetail")

    docs = _tracked_once(lines, proc)
    doc = docs[lines[0]]
    assert doc["service_name"] == "filetail"
    assert doc["severity_number"] == 10
    assert "_index:syslog-ng" in doc["attributes"]
    found = _search(push_key, f'service:filetail AND severity:notice AND "{run}"')
    assert found["count"] == len(lines)
