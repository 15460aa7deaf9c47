"""What the shippers' handshakes answer: the cluster Elasticsearch's clients expect to meet."""

import socket
from typing import Any

# The version shippers see: 8.x, so that they speak the typeless bulk API and accept us.
ES_VERSION = "8.19.0"
CLUSTER_NAME = "python-logger"
TAGLINE = "You Know, for Search"


def cluster_info() -> dict[str, Any]:
    """`GET /` as Elasticsearch answers it (the clients' and shippers' version check)."""
    return {
        "name": socket.gethostname(),
        "cluster_name": CLUSTER_NAME,
        "cluster_uuid": "python-logger-shippers-door",
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "python-logger",
            "build_date": "2025-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": TAGLINE,
    }


def license_info() -> dict[str, Any]:
    """`GET /_license`: a basic license that never expires (Logstash and Beats ask)."""
    return {
        "license": {
            "status": "active",
            "uid": "python-logger",
            "type": "basic",
            "issue_date": "2025-01-01T00:00:00.000Z",
            "issue_date_in_millis": 1735689600000,
            "max_nodes": 1000,
            "issued_to": CLUSTER_NAME,
            "issuer": "elasticsearch",
            "start_date_in_millis": -1,
        }
    }


def nodes_info() -> dict[str, Any]:
    """`GET /_nodes/...`: no nodes to sniff, so clients keep the address they were given."""
    return {
        "_nodes": {"total": 0, "successful": 0, "failed": 0},
        "cluster_name": CLUSTER_NAME,
        "nodes": {},
    }


def cluster_health() -> dict[str, Any]:
    """`GET /_cluster/health`: Vector's health check."""
    return {
        "cluster_name": CLUSTER_NAME,
        "status": "green",
        "timed_out": False,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": 0,
        "active_shards": 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
    }


def setup_resource(*, kind: str, name: str) -> dict[str, Any]:
    """A template, ILM policy or pipeline that shippers check for before they ship: present.

    Their contents are never used (the tracker has its own mapping); answering "present"
    saves the shipper a PUT.
    """
    if kind == "_index_template":
        return {"index_templates": [{"name": name, "index_template": {"index_patterns": []}}]}
    if kind == "_component_template":
        return {"component_templates": [{"name": name, "component_template": {"template": {}}}]}
    if kind == "_ilm/policy":
        return {name: {"version": 1, "policy": {"phases": {}}}}
    return {name: {}}
