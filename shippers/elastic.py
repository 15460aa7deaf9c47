"""Elasticsearch's bulk API as a door into the push: NDJSON actions in, its own shapes out.

A body is pairs of lines: an action (`index` or `create`, with `_index` and `_id`), then the
document. Each document becomes one batch item (shippers.mapping); each answer item says what
happened to it, as Elasticsearch would: 201 created, 409 for a `create` whose `_id` was seen
in the last 24 h (200 "noop" for an `index`), 400 with the reason. `delete` and `update` are
refused item by item; a line that is no action at all fails the request, as in Elasticsearch.
"""

import re
import uuid
from dataclasses import dataclass
from typing import Any

from core.contract import json_decode
from core.exceptions import PayloadTooLarge
from pusher.otlp import MAX_RECORDS
from pusher.services import BatchItem
from shippers.mapping import leaves, record_item

ACTIONS = ("index", "create")
REFUSED_ACTIONS = ("delete", "update")
# Elasticsearch's rules for an index name (MetadataCreateIndexService.validateIndexOrAliasName).
_INDEX_NAME = re.compile(r'[^A-Z\\/*?"<>| ,#:]{1,255}')
# _id values that are not UUIDs become one, the same for the same user and _id, so a resent
# bulk is recognised as a duplicate within 24 h, as a batch's message_id is.
_ID_NAMESPACE = uuid.UUID("6f6b3d1e-6a36-4d8a-9c1b-2f1f1c6a9e41")

BODY_REQUIRED = "request body is required"
NOT_TERMINATED = "The bulk request must be terminated by a newline [\\n]"
MALFORMED_ACTION = (
    "Malformed action/metadata line [{line}], expected START_OBJECT or END_OBJECT but found "
    "[{found}]"
)
UNKNOWN_ACTION = (
    "Malformed action/metadata line [{line}], expected field [create], [delete], [index] or "
    "[update] but found [{found}]"
)
INDEX_INVALID = (
    'Invalid index name [{index}], must be lowercase, must not contain \\, /, *, ?, ", <, >, |, '
    "space, comma, #, :, and must not start with _, - or +"
)
ACTION_REFUSED = "[{action}] is not accepted here: send logs with [index] or [create]"
SOURCE_MISSING = "The action on line [{line}] has no document line after it"
SOURCE_INVALID = "failed to parse: the document on line [{line}] is not a JSON object"
TOO_MANY_ACTIONS = f"At most {MAX_RECORDS} documents per bulk request."
DOCUMENT_EXISTS = "[{id}]: version conflict, document already exists"


class BulkRequestError(Exception):
    """The whole request is refused (Elasticsearch's 400 for the request, not an item)."""

    def __init__(self, reason: str, es_type: str = "illegal_argument_exception") -> None:
        super().__init__(reason)
        self.reason, self.es_type = reason, es_type


@dataclass
class BulkAction:
    """One action of a bulk body: what it asked for, and its document as a batch item."""

    action: str
    index: str | None
    doc_id: str | None
    item: BatchItem
    es_type: str = "document_parsing_exception"


def index_valid(name: str) -> bool:
    """Whether `name` is a name Elasticsearch would take for an index."""
    return (
        _INDEX_NAME.fullmatch(name) is not None
        and name[0] not in "_-+"
        and name not in (".", "..")
        and len(name.encode()) <= 255
    )


def message_id_for(*, user_id: str, doc_id: str) -> str:
    """The message_id of a document sent with `_id`: the _id itself if it is a UUID."""
    try:
        return str(uuid.UUID(doc_id))
    except ValueError:
        return str(uuid.uuid5(_ID_NAMESPACE, f"{user_id}:{doc_id}"))


def _refused(action: str, index: str | None, doc_id: str | None, reason: str, es_type: str):
    return BulkAction(action, index, doc_id, BatchItem(errors=[reason]), es_type)


def _document(line: bytes, number: int, index: str | None) -> BatchItem:
    try:
        document = json_decode(line)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        return BatchItem(errors=[SOURCE_INVALID.format(line=number)])
    return record_item(leaves(document), first=(("_index", index),) if index else ())


def _action(line: bytes, number: int) -> tuple[str, dict[str, Any]]:
    """The action's name and metadata; BulkRequestError when the line is no action."""
    try:
        parsed = json_decode(line)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        found = "VALUE" if parsed is not None else "invalid JSON"
        raise BulkRequestError(MALFORMED_ACTION.format(line=number, found=found))
    if len(parsed) != 1:
        raise BulkRequestError(UNKNOWN_ACTION.format(line=number, found=",".join(parsed)))
    name, meta = next(iter(parsed.items()))
    if name not in ACTIONS + REFUSED_ACTIONS:
        raise BulkRequestError(UNKNOWN_ACTION.format(line=number, found=name))
    if not isinstance(meta, dict):
        raise BulkRequestError(MALFORMED_ACTION.format(line=number, found="VALUE"))
    return name, meta


def _head(line: bytes, number: int, path_index: str | None) -> tuple[str, str | None, str | None]:
    """An action line's (action, index, _id); BulkRequestError when the line is no action."""
    name, meta = _action(line, number)
    index = meta.get("_index", path_index)
    if index is not None and type(index) is not str:
        index = str(index)
    doc_id = meta.get("_id")
    return name, index, (str(doc_id) if doc_id is not None and doc_id != "" else None)


def bulk_decode(*, body: bytes, user_id: str, path_index: str | None) -> list[BulkAction]:
    """Every action of a bulk body, in order, each with its batch item or its own error."""
    if not body.strip():
        raise BulkRequestError(BODY_REQUIRED, "parse_exception")
    if path_index is not None and not index_valid(path_index):
        raise BulkRequestError(
            INDEX_INVALID.format(index=path_index), "invalid_index_name_exception"
        )
    lines = body.split(b"\n")
    actions: list[BulkAction] = []
    valid_indices = set()  # checked once a request: shippers send one index or a few
    # Shippers repeat one action line (`{"create":{"_index":"logs"}}`) before every document:
    # each distinct line is read once a request.
    heads: dict[bytes, tuple[str, str | None, str | None]] = {}
    position = 0
    while position < len(lines):
        line, number = lines[position], position + 1
        position += 1
        if not line or line.isspace():
            continue
        if len(actions) >= MAX_RECORDS:
            raise PayloadTooLarge(TOO_MANY_ACTIONS)
        head = heads.get(line)
        if head is None:
            head = heads[line] = _head(line, number, path_index)
        name, index, doc_id = head
        if name == "delete":  # no document line follows a delete
            reason = ACTION_REFUSED.format(action=name)
            actions.append(_refused(name, index, doc_id, reason, "illegal_argument_exception"))
            continue
        if position >= len(lines) or not lines[position] or lines[position].isspace():
            reason = SOURCE_MISSING.format(line=number)
            actions.append(
                _refused(name, index, doc_id, reason, "action_request_validation_exception")
            )
            continue
        source, source_number = lines[position], position + 1
        position += 1
        if name == "update":
            reason = ACTION_REFUSED.format(action=name)
            actions.append(_refused(name, index, doc_id, reason, "illegal_argument_exception"))
        elif index is not None and index not in valid_indices and not index_valid(index):
            reason = INDEX_INVALID.format(index=index)
            actions.append(_refused(name, index, doc_id, reason, "invalid_index_name_exception"))
        else:
            valid_indices.add(index)
            item = _document(source, source_number, index)
            if doc_id is not None and not item.errors:
                item.message_id = message_id_for(user_id=user_id, doc_id=doc_id)
            actions.append(BulkAction(name, index, doc_id, item))
    if not actions:
        raise BulkRequestError(BODY_REQUIRED, "parse_exception")
    return actions


_CREATED = {"_version": 1, "result": "created", "status": 201}


def bulk_answer_item(action: BulkAction, result: dict[str, Any]) -> dict[str, Any]:
    """Elasticsearch's answer to one action, from the batch push's result for its item."""
    name, index, status = action.action, action.index or "", result["status"]
    if status == "rejected":
        error = {"type": action.es_type, "reason": "; ".join(result["errors"])}
        return {name: {"_index": index, "_id": action.doc_id, "status": 400, "error": error}}
    doc_id = action.doc_id or result["message_id"]
    if status == "queued":
        # Only what shippers read (status, _id, result): Elasticsearch's shards and sequence
        # numbers mean nothing here, and a 1,000-item answer is written on every request.
        return {name: {"_index": index, "_id": doc_id, **_CREATED}}
    if name == "create":  # a duplicate
        reason = DOCUMENT_EXISTS.format(id=doc_id)
        error = {"type": "version_conflict_engine_exception", "reason": reason}
        return {name: {"_index": index, "_id": doc_id, "status": 409, "error": error}}
    return {name: {"_index": index, "_id": doc_id, "_version": 1, "result": "noop", "status": 200}}


def es_error(*, status: int, es_type: str, reason: str) -> dict[str, Any]:
    """Elasticsearch's error body."""
    cause = {"type": es_type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}
