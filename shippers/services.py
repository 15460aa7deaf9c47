"""The shippers' doors into the push: decode, map, then the batch push's own service.

Nothing here counts, draws or queues: `messages_push_batch` does, as for every other door, so
the rate limit, the counter, the random number, the validator and the dead letters are the
same.
"""

import time
from typing import Any

from accounts.authentication import UncheckedClaims
from pusher.otlp import body_inflate
from pusher.services import messages_push_batch
from shippers import elastic, loki


def bulk_ingest(
    *,
    user_id: str,
    body: bytes,
    content_encoding: str,
    path_index: str | None,
    request_id: str,
    token: UncheckedClaims | None = None,
) -> dict[str, Any]:
    """Push every document of a bulk body; Elasticsearch's answer `{took, errors, items}`.

    Raises elastic.BulkRequestError when the body is no bulk request at all.
    """
    started = time.monotonic()
    actions = elastic.bulk_decode(
        body=body_inflate(body, content_encoding), user_id=user_id, path_index=path_index
    )
    report = messages_push_batch(
        user_id=user_id,
        items=[action.item for action in actions],
        request_id=request_id,
        token=token,
    )
    items = [
        elastic.bulk_answer_item(action, result)
        for action, result in zip(actions, report["items"], strict=True)
    ]
    return {
        "took": int((time.monotonic() - started) * 1000),
        "errors": any("error" in next(iter(item.values())) for item in items),
        "items": items,
    }


def loki_ingest(
    *,
    user_id: str,
    body: bytes,
    content_type: str,
    content_encoding: str,
    request_id: str,
    token: UncheckedClaims | None = None,
) -> str | None:
    """Push every entry of a Loki push; None when all were accepted, else why some were not.

    The accepted entries are pushed either way, as Loki keeps the good entries of a push
    that it answers with 400.
    """
    items = loki.push_decode(body=body_inflate(body, content_encoding), content_type=content_type)
    report = messages_push_batch(user_id=user_id, items=items, request_id=request_id, token=token)
    if not report["rejected"]:
        return None
    first = next(result for result in report["items"] if result["status"] == "rejected")
    return loki.REFUSED_SUMMARY.format(
        count=report["rejected"], total=len(items), first="; ".join(first["errors"])
    )
