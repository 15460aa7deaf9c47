"""URLs of the shippers' doors, at the root as Elasticsearch and Loki have them (and /es/)."""

from collections.abc import Callable
from typing import Any

from django.urls import path, re_path

from shippers import selectors
from shippers.apis import EsBulkApi, EsProbeApi, EsRootApi, EsSetupApi, LokiPushApi

# What shippers look for before they ship (Filebeat, Logstash): templates, policies, pipelines.
SETUP_KINDS = (
    "_index_template",
    "_component_template",
    "_template",
    "_ilm/policy",
    "_ingest/pipeline",
)


def _probe(answer: Callable[[], dict[str, Any]]) -> Callable:
    return EsProbeApi.as_view(answer=answer)


def _elastic(prefix: str, name: str) -> list:
    """Elasticsearch's paths under `prefix` ("" or "es/"). [\\s\\S] and \\Z: see config.urls.

    Names and indices take any text, so that a bad one gets Elasticsearch's 400, not a 404.
    """
    setup = [
        re_path(
            rf"^{prefix}{kind}/(?P<name>[\s\S]+)\Z",
            EsSetupApi.as_view(kind=kind),
            name=f"{name}-setup-{kind.replace('/', '-')}",
        )
        for kind in SETUP_KINDS
    ]
    return [
        path(prefix, EsRootApi.as_view(), name=f"{name}-root"),
        path(f"{prefix}_bulk", EsBulkApi.as_view(), name=f"{name}-bulk"),
        path(f"{prefix}_license", _probe(selectors.license_info), name=f"{name}-license"),
        path(f"{prefix}_cluster/health", _probe(selectors.cluster_health), name=f"{name}-health"),
        path(f"{prefix}_nodes", _probe(selectors.nodes_info), name=f"{name}-nodes"),
        re_path(
            rf"^{prefix}_nodes/(?P<rest>[\s\S]+)\Z",
            _probe(selectors.nodes_info),
            name=f"{name}-nodes-of",
        ),
        *setup,
        re_path(
            rf"^{prefix}(?P<index>[\s\S]+)/_bulk\Z", EsBulkApi.as_view(), name=f"{name}-index-bulk"
        ),
    ]


app_name = "shippers"
urlpatterns = [
    path("loki/api/v1/push", LokiPushApi.as_view(), name="loki-push"),
    *_elastic("es/", "es"),
    *_elastic("", "root"),
]
