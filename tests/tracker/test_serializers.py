"""The tracker's input rules: what MessageInputSerializer refuses, and the bulk fast path."""

import uuid

import pytest
from rest_framework.exceptions import ValidationError

from core.contract import MESSAGE_BLANK, MESSAGE_TOO_LONG, NOT_A_STRING
from tracker.serializers import MessageInputSerializer, _plain_validated, messages_input_check


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"user_message": ""}, "user_message", MESSAGE_BLANK),
        ({"user_message": " \n\t "}, "user_message", MESSAGE_BLANK),
        ({"user_message": "x" * 5001}, "user_message", MESSAGE_TOO_LONG),
        ({}, "user_message", "This field is required."),
        ({"user_message": 12345}, "user_message", NOT_A_STRING),
        ({"user_message": True}, "user_message", NOT_A_STRING),
        ({"user_message": ["a"]}, "user_message", NOT_A_STRING),
        ({"user_message": "x", "category": "Lost"}, "category", '"Lost" is not a valid choice.'),
        (
            {"user_message": "x", "request_count": -1},
            "request_count",
            "Ensure this value is greater than or equal to 0.",
        ),
        ({"user_message": "x", "message_id": "nope"}, "message_id", "Must be a valid UUID."),
    ],
)
def test_invalid_input_is_refused_with_the_contracts_text(
    data: dict, field: str, message: str
) -> None:
    serializer = MessageInputSerializer(data=data)
    assert not serializer.is_valid()
    assert serializer.errors[field] == [message]


def test_a_message_of_5000_characters_is_valid() -> None:
    serializer = MessageInputSerializer(data={"user_message": "é" * 5000})
    assert serializer.is_valid(), serializer.errors


# Each case: an item, and whether the fast path answers it itself (True) or must leave it to
# the serializer (False), because only the serializer knows DRF's coercions and messages.
FAST_PATH_CASES = [
    ({"user_message": "plain"}, True),
    ({"user_message": " spaced ", "category": "Failed", "request_count": 7}, True),
    ({"user_message": "x", "created_time": "2026-01-02T03:04:05Z"}, True),
    ({"user_message": "x", "created_time": "2026-01-02T03:04:05.123456+05:30"}, True),
    ({"user_message": "x", "message_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4())}, True),
    ({"user_message": "x", "message_id": uuid.uuid4().hex}, True),
    ({"user_message": "x", "created_time": "2026-01-02"}, False),
    ({"user_message": "x", "created_time": None}, False),
    ({"user_message": "x", "created_time": "0999-12-31T00:00:00Z"}, False),
    ({"user_message": "x", "request_count": "5"}, False),
    ({"user_message": "x", "request_count": True}, False),
    ({"user_message": "x", "request_count": 2**31}, False),
    ({"user_message": 123}, False),
    ({"user_message": "   "}, False),
    ({"user_message": "x", "message_id": "nope"}, False),
    ({"user_message": "x", "message_id": 5}, False),
    ({"user_message": "x", "category": None}, False),
    (["not", "a", "dict"], False),
]


@pytest.mark.parametrize(("item", "fast"), FAST_PATH_CASES)
def test_the_fast_path_answers_plain_items_exactly_as_the_serializer(
    item: object, fast: bool
) -> None:
    try:
        expected = dict(MessageInputSerializer().run_validation(item))
    except ValidationError:
        expected = None

    answer = _plain_validated(item)

    if fast:
        assert answer is not None
        assert answer == expected
    else:
        assert answer is None


@pytest.mark.parametrize(("item", "fast"), FAST_PATH_CASES)
def test_bulk_check_gives_the_serializers_answer_for_every_item(item: object, fast: bool) -> None:
    (checked,) = messages_input_check([item])
    try:
        expected = dict(MessageInputSerializer().run_validation(item))
    except ValidationError:
        expected = None

    assert checked.validated == expected
    assert bool(checked.errors) == (expected is None)
