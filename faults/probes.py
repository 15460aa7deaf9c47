"""Read the private stack's state directly: documents in Elasticsearch, keys in Redis.

The clients are configured here, not through Django settings: the fault suite only looks.
"""

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import elastic_transport
import elasticsearch
import redis

from faults.stack import ES_URL, INDEX_ALIAS, REDIS_PORT, RESULTS

# While Elasticsearch is down or still recovering its shards, a count is "not yet", not a failure.
_ES_NOT_YET = (elastic_transport.TransportError, elasticsearch.ApiError)


@cache
def es() -> elasticsearch.Elasticsearch:
    """A client for the private Elasticsearch."""
    return elasticsearch.Elasticsearch(ES_URL, request_timeout=10, max_retries=0)


@cache
def redis_db(db: int = 0) -> redis.Redis:
    """A raw (bytes) client for one database of the private Redis."""
    return redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=db, socket_timeout=5)


def documents_of(user_ids: list[str]) -> list[tuple[str, str]]:
    """(_id, message_id) of every document these users own, after a refresh."""
    client = es()
    client.indices.refresh(index=INDEX_ALIAS)
    response = client.search(
        index=INDEX_ALIAS,
        query={"terms": {"user_id": user_ids}},
        size=10_000,
        source=["message_id"],
        track_total_hits=True,
    )
    hits = response["hits"]["hits"]
    assert response["hits"]["total"]["value"] == len(hits), "more documents than one page"
    return [(hit["_id"], hit["_source"]["message_id"]) for hit in hits]


@dataclass
class Tally:
    """What became of a set of pushed messages."""

    pushed: int
    tracked: int
    lost: int
    duplicated: int
    unexpected: int
    waited_seconds: float

    @property
    def exact(self) -> bool:
        """Every message tracked once, nothing else."""
        return self.lost == self.duplicated == self.unexpected == 0


def delivery_tally(pushed_ids: list[str], user_ids: list[str], timeout: float) -> Tally:
    """Wait (up to `timeout`) until every pushed message is tracked; count what happened.

    Duplicated: documents beyond one per message_id (across every index behind the alias).
    Unexpected: documents of these users whose message_id was never pushed.
    """
    started = time.monotonic()
    wanted = set(pushed_ids)
    documents: list[tuple[str, str]] = []
    while True:
        with contextlib.suppress(_ES_NOT_YET):
            documents = documents_of(user_ids)
        if wanted <= {message_id for _, message_id in documents}:
            break
        if time.monotonic() - started > timeout:
            break
        time.sleep(0.5)
    found = {message_id for _, message_id in documents}
    return Tally(
        pushed=len(pushed_ids),
        tracked=len(found & wanted),
        lost=len(wanted - found),
        duplicated=len(documents) - len(found),
        unexpected=len(found - wanted),
        waited_seconds=round(time.monotonic() - started, 1),
    )


def results() -> list[dict[str, Any]]:
    """Every row recorded so far in var/faults/results.json."""
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else []


def record(fault: str, tally: Tally | None = None, **measured: Any) -> None:
    """Append one fault's measurements to var/faults/results.json (the closing note quotes it)."""
    row = {"fault": fault, **(asdict(tally) if tally else {}), **measured}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)  # the settings tests run without a stack
    RESULTS.write_text(json.dumps([*results(), row], indent=2))
