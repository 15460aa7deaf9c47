"""The Elasticsearch bulk API in process, against the real Redis: mapping, items, errors, auth."""

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime

import pytest

from accounts.selectors import request_count_get
from pusher.otlp import ATTRIBUTE_MAX_LENGTH
from shippers.elastic import INDEX_INVALID, SOURCE_INVALID, UNKNOWN_ACTION
from shippers.mapping import MESSAGE_MISSING
from tests.shippers.conftest import apikey_header, key_parts
from tests.support.queue import queued

NDJSON = "application/x-ndjson"


def _ndjson(*lines: object) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _bulk(client, body: bytes, path: str = "/_bulk", **headers):
    return client.generic("POST", path, body, content_type=NDJSON, **headers)


def _queued() -> list[dict]:
    return queued("validator")


def test_documents_are_mapped_by_ecs_and_queued_once_each(shipper_client, user):
    now = datetime.now(UTC).replace(microsecond=123000)
    body = _ndjson(
        {"create": {"_index": "app-logs"}},
        {
            "@timestamp": now.isoformat().replace("+00:00", "Z"),
            "message": "payment declined",
            "log": {"level": "ERROR", "logger": "billing"},
            "service": {"name": "checkout", "version": "1.2"},
            "http": {"status": 502},
            "tags": ["a", "b"],
        },
        {"index": {}},
        {"msg": "second", "level": "warn", "service": "api"},
    )

    response = _bulk(shipper_client, body)

    assert response.status_code == 200, response.content
    assert response["X-Elastic-Product"] == "Elasticsearch"
    answer = response.json()
    assert answer["errors"] is False
    assert [next(iter(item)) for item in answer["items"]] == ["create", "index"]
    first, second = (next(iter(item.values())) for item in answer["items"])
    assert first["status"] == second["status"] == 201
    assert first["_index"] == "app-logs"
    queued_items = {item["message_id"]: item for item in _queued()}
    assert set(queued_items) == {first["_id"], second["_id"]}
    one, two = queued_items[first["_id"]], queued_items[second["_id"]]
    assert one["user_message"] == "payment declined"
    assert one["created_time"] == "{}.123000Z".format(now.strftime("%Y-%m-%dT%H:%M:%S"))
    assert (one["severity_text"], one["severity_number"]) == ("ERROR", 17)
    assert one["service_name"] == "checkout"
    assert one["attributes"] == [
        "_index:app-logs",
        "log.logger:billing",
        "service.version:1.2",
        "http.status:502",
        'tags:["a","b"]',
    ]
    assert (two["user_message"], two["severity_number"]) == ("second", 13)
    assert two["service_name"] == "api"
    assert "attributes" not in two
    assert request_count_get(user_id=user["user_id"]) == 2


def test_the_index_of_the_path_is_the_default_and_es_prefix_works(shipper_client):
    body = _ndjson(
        {"index": {}}, {"log": "from fluent bit"}, {"index": {"_index": "b"}}, {"log": "x"}
    )

    response = _bulk(shipper_client, body, path="/es/a/_bulk")

    assert response.status_code == 200, response.content
    assert [item["index"]["_index"] for item in response.json()["items"]] == ["a", "b"]
    assert sorted(item["attributes"][0] for item in _queued()) == ["_index:a", "_index:b"]


def test_a_bad_item_fails_alone(shipper_client, user):
    body = (
        _ndjson(
            {"create": {"_index": "logs"}},
            {"no_message": "here"},
            {"create": {"_index": "logs"}},
            {"message": "good one"},
            {"delete": {"_index": "logs", "_id": "1"}},
            {"create": {"_index": "Bad Index"}},
            {"message": "x"},
            {"create": {}},
            {"message": "far past", "@timestamp": "1990-01-01T00:00:00Z"},
            {"create": {}},
            {"message": "x", "@timestamp": "yesterday"},
            {"create": {}},
            {"message": "x", "huge": "v" * ATTRIBUTE_MAX_LENGTH},
        )
        + b'{"create": {}}\n[1, 2]\n'
    )

    response = _bulk(shipper_client, body)

    assert response.status_code == 200
    answer = response.json()
    assert answer["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in answer["items"]]
    assert statuses == [400, 201, 400, 400, 400, 400, 400, 400]
    errors = [next(iter(item.values())).get("error", {}) for item in answer["items"]]
    assert errors[0]["reason"] == MESSAGE_MISSING
    assert errors[3]["type"] == "invalid_index_name_exception"
    assert errors[3]["reason"] == INDEX_INVALID.format(index="Bad Index")
    assert "created_time must lie within" in errors[4]["reason"]
    assert errors[5]["reason"].startswith("@timestamp: not a date-time")
    assert errors[6]["reason"].startswith("attributes:")
    assert errors[7]["reason"] == SOURCE_INVALID.format(line=15)
    assert [item["user_message"] for item in _queued()] == ["good one"]
    assert request_count_get(user_id=user["user_id"]) == 1


def test_a_resent_id_is_a_duplicate_neither_counted_nor_queued(shipper_client, user):
    body = _ndjson({"create": {"_id": "order-17"}}, {"message": "once"})
    ids = {"index": str(uuid.uuid4())}
    again = _ndjson({"index": {"_id": ids["index"]}}, {"message": "also once"})

    first = _bulk(shipper_client, body + again).json()["items"]
    second = _bulk(shipper_client, body + again).json()["items"]

    assert [first[0]["create"]["status"], first[1]["index"]["status"]] == [201, 201]
    assert first[0]["create"]["_id"] == "order-17"
    assert second[0]["create"]["status"] == 409
    assert second[0]["create"]["error"]["type"] == "version_conflict_engine_exception"
    assert (second[1]["index"]["status"], second[1]["index"]["result"]) == (200, "noop")
    assert len(_queued()) == 2
    assert ids["index"] in {item["message_id"] for item in _queued()}
    assert request_count_get(user_id=user["user_id"]) == 2


def test_gzip_bodies_are_inflated(shipper_client):
    body = gzip.compress(_ndjson({"create": {}}, {"message": "zipped"}))

    response = _bulk(shipper_client, body, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 200, response.content
    assert [item["user_message"] for item in _queued()] == ["zipped"]


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        (b"", "parse_exception", "request body is required"),
        (b"\n\n", "parse_exception", "request body is required"),
        (b"not json\n", "illegal_argument_exception", "Malformed action/metadata line [1]"),
        (b'{"upsert": {}}\n{}\n', "illegal_argument_exception", UNKNOWN_ACTION[:30]),
        (b'"text"\n', "illegal_argument_exception", "Malformed action/metadata line [1]"),
        (b'{"index": 3}\n{}\n', "illegal_argument_exception", "Malformed action/metadata"),
        (b"[" * 100_000 + b"\n", "illegal_argument_exception", "Malformed action/metadata"),
    ],
)
def test_what_is_no_bulk_request_gets_elasticsearchs_400(shipper_client, body, kind, reason):
    response = _bulk(shipper_client, body)

    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["status"] == 400
    assert answer["error"]["type"] == kind
    assert answer["error"]["reason"].startswith(reason)
    assert answer["error"]["root_cause"][0]["type"] == kind
    assert response["X-Elastic-Product"] == "Elasticsearch"
    assert _queued() == []


def test_bad_gzip_and_bad_path_index_are_400(shipper_client):
    response = _bulk(shipper_client, b"\x1f\x8bnot gzip", HTTP_CONTENT_ENCODING="gzip")
    assert (response.status_code, response.json()["status"]) == (400, 400)

    response = _bulk(shipper_client, _ndjson({"index": {}}, {"message": "x"}), path="/_x/_bulk")
    assert response.json()["error"]["type"] == "invalid_index_name_exception"


def _auth_forms(key: dict) -> dict[str, str]:
    key_id, secret = key_parts(key)
    return {
        "apikey": apikey_header(key),
        "apikey-whole-key": "ApiKey " + base64.b64encode(key["key"].encode()).decode(),
        "basic": "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode(),
        "basic-key-as-password": "Basic " + base64.b64encode(f"x:{key['key']}".encode()).decode(),
        "bearer-key": f"Bearer {key['key']}",
    }


@pytest.mark.parametrize(
    "form", ["apikey", "apikey-whole-key", "basic", "basic-key-as-password", "bearer-key"]
)
def test_every_key_form_is_accepted(api_client, push_key, form):
    api_client.credentials(HTTP_AUTHORIZATION=_auth_forms(push_key)[form])

    response = _bulk(api_client, _ndjson({"index": {}}, {"message": form}))

    assert response.status_code == 200, response.content
    assert [item["user_message"] for item in _queued()] == [form]


def test_an_access_token_is_accepted(auth_client):
    response = _bulk(auth_client, _ndjson({"index": {}}, {"message": "jwt"}))

    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "header",
    [
        None,
        "ApiKey " + base64.b64encode(b"0123456789abcdef:wrong").decode(),
        "ApiKey !!!notbase64",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Bearer plk_0123456789abcdef_wrong",
    ],
)
def test_missing_or_wrong_credentials_get_elasticsearchs_401(api_client, header):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)

    response = _bulk(api_client, _ndjson({"index": {}}, {"message": "x"}))

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "security_exception"
    assert "WWW-Authenticate" in response
    assert _queued() == []


def test_a_key_without_the_push_scope_gets_403(api_client, user):
    from accounts.services import api_key_create

    key = api_key_create(user_id=user["user_id"], name="reader", scopes=["read"])
    api_client.credentials(HTTP_AUTHORIZATION=apikey_header(key))

    response = _bulk(api_client, _ndjson({"index": {}}, {"message": "x"}))

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "security_exception"


def test_over_the_rate_the_bulk_gets_429_with_retry_after(shipper_client, settings, user):
    settings.INGEST_RATE_PER_SECOND, settings.INGEST_BURST = 1, 2
    body = _ndjson(*[line for n in range(2) for line in ({"index": {}}, {"message": f"m{n}"})])
    assert _bulk(shipper_client, body).status_code == 200

    response = _bulk(shipper_client, body)

    assert response.status_code == 429
    assert response.json()["error"]["type"] == "es_rejected_execution_exception"
    assert int(response["Retry-After"]) >= 1
    assert request_count_get(user_id=user["user_id"]) == 2


def test_the_handshake_and_probes_answer_as_elasticsearch(api_client):
    root = api_client.get("/", HTTP_ACCEPT="application/vnd.elasticsearch+json; compatible-with=8")
    assert root.status_code == 200
    assert root["X-Elastic-Product"] == "Elasticsearch"
    info = root.json()
    assert info["version"]["number"].startswith("8.")
    assert info["version"]["build_flavor"] == "default"
    assert {"name", "cluster_name", "tagline"} <= set(info)
    assert api_client.get("/es/").json() == info
    assert api_client.head("/").status_code == 200
    assert api_client.get("/_license").json()["license"]["status"] == "active"
    assert api_client.get("/_nodes/_local/http").json()["nodes"] == {}
    assert api_client.get("/es/_nodes/a%0Ab").status_code == 200  # any text, a line break too
    assert api_client.get("/_cluster/health").json()["status"] == "green"
    assert api_client.get("/_index_template/filebeat-8").status_code == 200
    assert api_client.head("/es/_template/logs").status_code == 200
    put = api_client.put("/_ilm/policy/filebeat", {"policy": {}}, format="json")
    assert put.json() == {"acknowledged": True}


def test_a_browser_at_the_root_gets_the_usual_404(api_client):
    response = api_client.get("/", HTTP_ACCEPT="text/html,application/xhtml+xml")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_setup_put_that_is_not_json_gets_elasticsearchs_400(api_client):
    response = api_client.generic(
        "PUT", "/_index_template/logs", b"{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "parse_exception"
    assert response["X-Elastic-Product"] == "Elasticsearch"
