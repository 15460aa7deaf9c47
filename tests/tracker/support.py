"""Helpers for the tracker tests: complete documents, indexing and refreshing."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from core.contract import date_format
from core.search import es_client
from tracker.documents import index_alias
from tracker.services import messages_index

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def refresh() -> None:
    """Make everything indexed so far searchable (tests only; production never forces it)."""
    es_client().indices.refresh(index=index_alias())


def document(**fields: Any) -> dict[str, Any]:
    """A complete, valid document; `created_time` may be a datetime."""
    created = fields.pop("created_time", T0)
    return {
        "message_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "user_message": "hello",
        "request_count": 1,
        "category": "Direct",
        "created_time": date_format(created) if isinstance(created, datetime) else created,
        **fields,
    }


def index(*documents: dict[str, Any]) -> list[dict[str, Any]]:
    """Index `documents`, check every one landed, and refresh."""
    results = messages_index(documents=list(documents))
    assert [result["status"] for result in results] == ["indexed"] * len(documents)
    refresh()
    return list(documents)


def minutes(n: float) -> timedelta:
    """`n` minutes, for readable offsets from T0."""
    return timedelta(minutes=n)
