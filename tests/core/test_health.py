"""Health probes, the error shape, and a round trip through the real Elasticsearch."""

import uuid

import pytest
from django.conf import settings

from core import search
from core.search import es_client
from tests.support.waiting import wait_for


@pytest.fixture
def elasticsearch_down(settings):
    """Point the client at a closed port for one test."""
    settings.ELASTICSEARCH_URL = "http://127.0.0.1:9"
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
        "redis": "ok",
        "elasticsearch": "ok",
        "database": "ok",
        "queue": "ok",
    }


@pytest.mark.django_db
def test_readyz_names_elasticsearch_when_it_is_down(api_client, elasticsearch_down):
    response = api_client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert "elasticsearch" in body["down"]
    assert body["checks"]["redis"] == "ok"


def test_unknown_urls_get_a_json_404(api_client):
    response = api_client.get("/no/such/page")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_a_document_indexed_in_elasticsearch_can_be_searched_back(clean_index):
    client = es_client()
    message_id = str(uuid.uuid4())
    client.index(
        index=settings.TRACKER_INDEX_ALIAS,
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
def test_readyz_names_elasticsearch_when_the_index_is_missing(api_client, settings):
    settings.TRACKER_INDEX_ALIAS = "no-such-alias"

    response = api_client.get("/readyz")

    assert response.status_code == 503
    assert "no-such-alias" in response.json()["checks"]["elasticsearch"]


def test_an_api_path_that_matches_nothing_gets_a_json_404_even_with_debug(api_client, settings):
    settings.DEBUG = True

    response = api_client.get("/api/tracker/messages/not-a-uuid/")

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
