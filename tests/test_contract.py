"""The message contract: the mapping agrees with it, and its checks refuse what breaks it."""

import uuid

import pytest

from core.contract import (
    CARRIED_FIELDS,
    DOCUMENT_FIELDS,
    ES_TYPES,
    NOT_AN_OBJECT,
    PAYLOAD_FIELDS,
    document_errors,
    payload_errors,
)
from tracker.documents import MessageDocument
from tracker.grams import SHORT_GRAMS_FIELD, TRIGRAM_FIELD
from tracker.serializers import MessageSerializer

_SEARCH_ONLY = {TRIGRAM_FIELD, SHORT_GRAMS_FIELD}


def _mapping() -> dict:
    return MessageDocument._doc_type.mapping.to_dict()["properties"]


def test_the_mapping_holds_exactly_the_contracts_fields_with_their_types() -> None:
    mapped = {name: spec["type"] for name, spec in _mapping().items() if name not in _SEARCH_ONLY}
    expected = {field.name: ES_TYPES[field.kind] for field in DOCUMENT_FIELDS}
    assert mapped == expected


def test_the_api_shows_every_field_of_the_contract() -> None:
    assert set(MessageSerializer().fields) == {field.name for field in DOCUMENT_FIELDS}


def test_a_document_carries_every_payload_field_it_has_in_common() -> None:
    assert set(CARRIED_FIELDS) == {f.name for f in PAYLOAD_FIELDS} & {
        f.name for f in DOCUMENT_FIELDS
    }


def _payload(**fields: object) -> dict:
    return {
        "message_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "user_message": "hello",
        "request_count": 1,
        "random_number": 7,
        "created_time": "2026-01-01T00:00:00Z",
        "request_id": "req",
        **fields,
    }


def _document(**fields: object) -> dict:
    payload = _payload()
    del payload["random_number"]
    return {
        **payload,
        "category": "Direct",
        "attempts": [{"random_number": 7, "at": "2026-01-01T00:00:00Z"}],
        "random_numbers": [7],
        **fields,
    }


def test_well_formed_items_hold_the_contract() -> None:
    assert payload_errors(_payload()) == []
    assert document_errors(_document()) == []
    assert document_errors(_document(request_id=None)) == []  # optional


@pytest.mark.parametrize(
    ("item", "error"),
    [
        (_payload(message_id="not-a-uuid"), "message_id: not a valid uuid."),
        (_payload(user_message=12345), "user_message: not a valid text."),
        (_payload(user_message="   "), "user_message: not a valid text."),
        (_payload(user_message="x" * 5001), "user_message: not a valid text."),
        (_payload(random_number=61), "random_number: not a valid random."),
        (_payload(request_count=True), "request_count: not a valid integer."),
        (_payload(created_time="yesterday"), "created_time: not a valid datetime."),
        (_payload(created_time="2026-01-01T00:00:00"), "created_time: not a valid datetime."),
        (_payload(user_id=None), "user_id: this field is required."),
        (_payload(extra=1), "extra: not a field of the message contract."),
        ("not an object", NOT_AN_OBJECT),
    ],
)
def test_a_payload_that_breaks_the_contract_is_named(item: object, error: str) -> None:
    assert error in payload_errors(item)


@pytest.mark.parametrize(
    ("item", "error"),
    [
        (_document(category="Lost"), "category: not a valid category."),
        (_document(attempts=[{"random_number": 7}]), "attempts: not a valid attempts."),
        (_document(random_numbers=["7"]), "random_numbers: not a valid integers."),
        ({"message_id": "not-a-uuid"}, "user_message: this field is required."),
    ],
)
def test_a_document_that_breaks_the_contract_is_named(item: object, error: str) -> None:
    assert error in document_errors(item)
