"""Health probes, the error shape, security headers, and a round trip through Elasticsearch."""

import logging
import uuid

import pytest
from django.conf import settings

from core import search
from core.apis import PART_DOWN, PART_UP
from core.logging import RequestIdFilter
from core.search import es_client
from tests.support.waiting import wait_for
from tracker.documents import index_for

# Words of the errors behind a down part; none may reach the public answer.
ERROR_WORDS = ("Error", "Exception", "127.0.0.1", "no-such-alias", "refused", "cluster")


@pytest.fixture
def readiness_log(caplog):
    """The readiness probe's log, each record stamped with its request id as it is logged."""
    # On the logger, not the handler: pytest gives each test phase a handler of its own.
    logger, stamp = logging.getLogger("core.apis"), RequestIdFilter()
    logger.addFilter(stamp)
    with caplog.at_level(logging.WARNING, logger="core.apis"):
        yield caplog
    logger.removeFilter(stamp)


@pytest.fixture
def elasticsearch_down(settings):
    """Point the client at a closed port for one test."""
    settings.ELASTICSEARCH_URL = ["http://127.0.0.1:9"]
    search._clients.clear()
    yield
    search._clients.clear()


def test_healthz_answers_while_the_process_runs(api_client):
    response = api_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_200_when_every_part_is_up(api_client, qcluster):
    qcluster()

    response = wait_for(
        lambda: (r := api_client.get("/readyz")).status_code == 200 and r, timeout=30
    )

    assert response.json()["checks"] == {
        "redis": PART_UP,
        "elasticsearch": PART_UP,
        "database": PART_UP,
        "queue": PART_UP,
    }


def _assert_says_no_more_than_down(response) -> None:
    text = response.content.decode()
    leaked = [word for word in ERROR_WORDS if word in text]
    assert not leaked, text
    assert set(response.json()["checks"].values()) <= {PART_UP, PART_DOWN}


def _logged_for(log, request_id: str) -> list[str]:
    return [record.getMessage() for record in log.records if record.request_id == request_id]


@pytest.mark.django_db
def test_readyz_names_elasticsearch_when_it_is_down_without_its_error(
    api_client, elasticsearch_down, readiness_log
):
    response = api_client.get("/readyz", HTTP_X_REQUEST_ID="ready-es-down")

    assert response.status_code == 503
    body = response.json()
    # No queue cluster runs in this test, so the queue is down too.
    assert body["checks"] == {
        "redis": PART_UP,
        "elasticsearch": PART_DOWN,
        "database": PART_UP,
        "queue": PART_DOWN,
    }
    assert (body["status"], sorted(body["down"])) == ("unavailable", ["elasticsearch", "queue"])
    _assert_says_no_more_than_down(response)
    # The reason is in the log, under this request's id.
    [elasticsearch_line] = [
        line for line in _logged_for(readiness_log, "ready-es-down") if "elasticsearch" in line
    ]
    assert "ConnectionError" in elasticsearch_line


def test_unknown_urls_get_a_json_404(api_client):
    response = api_client.get("/no/such/page")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_a_document_indexed_in_elasticsearch_can_be_searched_back(clean_index):
    client = es_client()
    message_id = str(uuid.uuid4())
    client.index(
        # A write names its month's index; reads go through the alias over all months.
        index=index_for("2026-01-01T00:00:00Z"),
        id=message_id,
        document={
            "message_id": message_id,
            "user_id": "u1",
            "user_message": "round trip",
            "category": "Direct",
            "request_count": 1,
            "created_time": "2026-01-01T00:00:00Z",
        },
    )
    client.indices.refresh(index=settings.TRACKER_INDEX_ALIAS)

    hits = client.search(
        index=settings.TRACKER_INDEX_ALIAS, query={"term": {"message_id": message_id}}
    )["hits"]["hits"]

    assert [hit["_id"] for hit in hits] == [message_id]
    assert hits[0]["_source"]["user_message"] == "round trip"


def test_schema_pages_load_no_asset_from_another_host(api_client):
    for path in ("/api/schema/swagger-ui/", "/api/schema/redoc/"):
        html = api_client.get(path).content.decode()
        assert "http://" not in html.replace("http://testserver", "")
        assert "https://" not in html, path


def test_a_disallowed_host_gets_a_json_400(api_client):
    response = api_client.get("/healthz", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request.", "code": "bad_request"}


@pytest.mark.django_db
def test_readyz_names_elasticsearch_when_the_index_is_missing(api_client, settings, readiness_log):
    settings.TRACKER_INDEX_ALIAS = "no-such-alias"

    response = api_client.get("/readyz", HTTP_X_REQUEST_ID="ready-no-index")

    assert response.status_code == 503
    assert response.json()["checks"]["elasticsearch"] == PART_DOWN
    _assert_says_no_more_than_down(response)
    assert any("no-such-alias" in line for line in _logged_for(readiness_log, "ready-no-index"))


@pytest.mark.parametrize(
    "path",
    [
        "/api/tracker/messages/not-a-uuid/",
        # An encoded line break in the id, which "." in a pattern does not match (schemathesis
        # found it). Encoded, because urlsplit drops raw line breaks before the request is made.
        "/api/auth/users/%0A/",
        "/api/tracker/messages/a%0D%0Ab/",
    ],
)
def test_an_api_path_that_matches_nothing_gets_a_json_404_even_with_debug(
    api_client, settings, path
):
    settings.DEBUG = True

    response = api_client.delete(path)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_a_chunked_body_without_content_length_gets_a_411(api_client):
    response = api_client.generic(
        "POST", "/api/pusher/push/", b"", HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH=""
    )

    assert response.status_code == 411
    assert response.json()["code"] == "length_required"


def test_elasticsearch_answers_get_root_with_its_version():
    # The root-info plugin services.sh installs; any full distribution answers the same way.
    info = es_client().info()

    assert info["version"]["number"].startswith("8.19.")
    assert info["tagline"] == "You Know, for Search"
    assert (
        info["cluster_uuid"]
        == es_client().cluster.state(metric="metadata")["metadata"]["cluster_uuid"]
    )
