"""The process-wide Elasticsearch client, created lazily after any fork."""

import os

from django.conf import settings
from elasticsearch import Elasticsearch
from elasticsearch.serializer import OrjsonSerializer
from elasticsearch_dsl import connections

_clients: dict[int, Elasticsearch] = {}


def es_client() -> Elasticsearch:
    """Return this process's client (gunicorn and django-q2 fork, so one per pid)."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        client = Elasticsearch(
            settings.ELASTICSEARCH_URL,
            request_timeout=settings.ELASTICSEARCH_TIMEOUT,
            # Outages surface fast as 503s; the queue, not the client, does the patient retrying.
            # One retry is enough for one dead node of several: the refused request marks it
            # dead, the retry and the requests after it go to a live one. Two dead of three
            # leave no master anyway.
            max_retries=1,
            retry_on_timeout=False,
            # Bulk bodies are the web worker's biggest JSON: orjson writes them 9x faster.
            serializers={OrjsonSerializer.mimetype: OrjsonSerializer()},
        )
        _clients.clear()
        _clients[pid] = client
        connections.add_connection("default", client)
    return client
