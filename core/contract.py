"""The message contract: the one definition of a message's fields, categories, limits and errors.

Every app imports these names from here, never from each other: the pusher builds a payload,
the validator turns it into a document, the tracker maps, validates and stores it, and all of
them agree because there is one place to read. The Elasticsearch mapping is checked against
`DOCUMENT_FIELDS` by a test, so adding a field means one edit here plus one in the mapping.

The `*_errors` functions check an item as it leaves an inbox: an item that breaks the
contract goes to that inbox's dead letter instead of reaching Elasticsearch half-formed.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings

# --- Categories ----------------------------------------------------------------------------
DIRECT, RETRIED, FAILED = "Direct", "Retried", "Failed"
CATEGORIES = (DIRECT, RETRIED, FAILED)

# --- Limits --------------------------------------------------------------------------------
MESSAGE_MAX_LENGTH = 5_000
BULK_MAX_ITEMS = 1_000
# Elasticsearch's `integer` is a signed 32-bit value.
REQUEST_COUNT_MAX = 2**31 - 1
RANDOM_LOW, RANDOM_HIGH = 1, 60
# OpenTelemetry's SeverityNumber: 1 (TRACE) to 24 (FATAL4); 0 is "unspecified".
SEVERITY_MIN, SEVERITY_MAX = 0, 24
# A log record's attributes are stored as "key:value" keywords: one attribute filters a search.
ATTRIBUTES_MAX = 128
# Every date-time a message holds lies in [EARLIEST, LATEST): wide enough for any real message,
# and far enough from Python's year 1 and 9999 that time zones and stats ranges never overflow.
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
# The range as the schema states it: years 1000 to 9998 (9999-01-01 is past the end).
STORABLE_YEARS_PATTERN = r"^(1[0-9]{3}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
# A created_time a client chooses also chooses the month index its message is written to, and
# each month is an index with a shard of its own (a node holds at most 1,000): so it must lie
# within settings.TRACKER_MAX_AGE_DAYS before now and at most CREATED_AHEAD after it.
CREATED_AHEAD = timedelta(days=1)

# --- Error texts (one per rule; tests assert on these) -------------------------------------
MESSAGE_BLANK = "The message must not be blank."
MESSAGE_TOO_LONG = f"A message is at most {MESSAGE_MAX_LENGTH} characters."
NOT_A_STRING = "Not a valid string."
TEXT_NOT_STORABLE = "Text must be valid Unicode: no NUL characters and no lone surrogates."
TOO_MANY_MESSAGES = f"At most {BULK_MAX_ITEMS} messages per request."
DATETIME_OUT_OF_RANGE = "Date-times must lie from 1000-01-01 up to 9999-01-01 (UTC)."
CREATED_OUT_OF_WINDOW = (
    "created_time must lie within the last {days} days and at most one day ahead of now."
)
FIELD_MISSING = "{field}: this field is required."
FIELD_INVALID = "{field}: not a valid {kind}."
FIELD_UNKNOWN = "{field}: not a field of the message contract."
NOT_AN_OBJECT = "The item is not a JSON object."


# --- Fields --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One field of a message: its name, its kind of value, and whether it must be present."""

    name: str
    kind: str
    required: bool = True


# The kinds, and the Elasticsearch type each maps to (tests compare the mapping with this).
ES_TYPES = {
    "uuid": "keyword",
    "keyword": "keyword",
    "category": "keyword",
    "text": "text",
    "integer": "integer",
    "random": "integer",
    "datetime": "date",
    "attempts": "object",
    "integers": "integer",
    "severity": "integer",
    "keywords": "keyword",
    "boolean": "boolean",
}
# Fields a message may carry from OpenTelemetry (POST /v1/logs), from push to document.
LOG_FIELDS = (
    Field("severity_text", "keyword", required=False),
    Field("severity_number", "severity", required=False),
    Field("service_name", "keyword", required=False),
    Field("trace_id", "keyword", required=False),
    Field("span_id", "keyword", required=False),
    Field("attributes", "keywords", required=False),
    # The body was cut to MESSAGE_MAX_LENGTH characters.
    Field("truncated", "boolean", required=False),
)

# What the pusher hands to the validator.
PAYLOAD_FIELDS = (
    Field("message_id", "uuid"),
    Field("user_id", "uuid"),
    Field("user_message", "text"),
    Field("request_count", "integer"),
    Field("random_number", "random"),
    Field("created_time", "datetime"),
    Field("request_id", "keyword", required=False),
    *LOG_FIELDS,
)
# What waits in the retry inbox for its second draw: the payload and its first attempt.
RETRY_PAYLOAD_FIELDS = (*PAYLOAD_FIELDS, Field("attempts", "attempts"))
# What the tracker stores: a document, `_id` = message_id.
DOCUMENT_FIELDS = (
    Field("message_id", "uuid"),
    Field("user_id", "uuid"),
    Field("user_message", "text"),
    Field("request_count", "integer"),
    Field("category", "category"),
    Field("created_time", "datetime"),
    Field("tracked_time", "datetime", required=False),
    Field("request_id", "keyword", required=False),
    Field("attempts", "attempts", required=False),
    Field("random_numbers", "integers", required=False),
    *LOG_FIELDS,
)
# Payload fields a document carries over unchanged from the push.
CARRIED_FIELDS = tuple(
    field.name
    for field in PAYLOAD_FIELDS
    if field.name in {document_field.name for document_field in DOCUMENT_FIELDS}
)


# --- Formats -------------------------------------------------------------------------------
def json_encode(value: Any) -> str:
    """`value` as compact JSON: orjson, several times faster than the standard library on the
    pipeline's hot paths, which falls back to it for what orjson refuses (a lone surrogate, an
    integer past 64 bits), so that such an item still travels and is judged by the contract."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"))


def json_decode(text: str | bytes) -> Any:
    """Parse JSON as `json_encode` writes it; raises ValueError when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # What orjson refuses but JSON allows ("\ud800"): the contract then names the field.
        return json.loads(text)


def date_format(value: datetime) -> str:
    """Write `value` the way messages store times: ISO 8601 in UTC with a `Z`."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def timestamp_format(seconds: float) -> str:
    """Write a Unix time the way messages store times."""
    return date_format(datetime.fromtimestamp(seconds, UTC))


def in_storable_range(value: datetime) -> bool:
    """Whether `value` (naive values read as UTC) lies in [EARLIEST, LATEST)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Aware comparisons subtract offsets without converting, so they cannot overflow.
    return EARLIEST <= value < LATEST


def created_time_error(value: datetime) -> str | None:
    """The error of a client-chosen created_time (aware), or None when its month may be written."""
    now = datetime.now(UTC)
    days = settings.TRACKER_MAX_AGE_DAYS
    if now - timedelta(days=days) <= value <= now + CREATED_AHEAD:
        return None
    return CREATED_OUT_OF_WINDOW.format(days=days)


def message_text_error(value: Any) -> str | None:
    """The error of a message's text, or None: a string of 1 to 5,000 characters, not blank."""
    if type(value) is not str:
        return NOT_A_STRING
    if len(value) > MESSAGE_MAX_LENGTH:
        return MESSAGE_TOO_LONG
    if "\x00" in value or not is_encodable(value):
        return TEXT_NOT_STORABLE
    # Kept verbatim: whitespace is part of a message, but all-whitespace is refused.
    if not value.strip():
        return MESSAGE_BLANK
    return None


def is_encodable(value: str) -> bool:
    """Whether `value` can be written as UTF-8, which a lone surrogate cannot.

    JSON lets a string hold one ("\\ud800"), and in any field of a document it failed the
    whole bulk it was in, not just its own item.
    """
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- Checks at an inbox's exit -------------------------------------------------------------
# What uuid.UUID accepts, minus its braces and "urn:uuid:" forms (ids are written plain), as a
# compiled pattern: a regular-expression match costs a fifth of building a UUID, on every hop.
_UUID = re.compile(r"[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}", re.IGNORECASE)


def _is_uuid(value: Any) -> bool:
    return type(value) is str and _UUID.fullmatch(value) is not None


def _is_datetime(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None and in_storable_range(parsed)


def _is_attempts(value: Any) -> bool:
    return type(value) is list and all(
        type(attempt) is dict
        and _is_random(attempt.get("random_number"))
        and _is_datetime(attempt.get("at"))
        for attempt in value
    )


def _is_integer(value: Any) -> bool:
    return type(value) is int and 0 <= value <= REQUEST_COUNT_MAX


def _is_random(value: Any) -> bool:
    return type(value) is int and RANDOM_LOW <= value <= RANDOM_HIGH


_KIND_CHECKS: dict[str, Callable[[Any], bool]] = {
    "uuid": _is_uuid,
    "keyword": lambda value: type(value) is str and is_encodable(value),
    "category": lambda value: value in CATEGORIES,
    "text": lambda value: message_text_error(value) is None,
    "integer": _is_integer,
    "random": _is_random,
    "datetime": _is_datetime,
    "attempts": _is_attempts,
    "integers": lambda value: type(value) is list and all(_is_random(n) for n in value),
    "severity": lambda value: type(value) is int and SEVERITY_MIN <= value <= SEVERITY_MAX,
    "keywords": lambda value: (
        type(value) is list
        and len(value) <= ATTRIBUTES_MAX
        and all(type(v) is str and is_encodable(v) for v in value)
    ),
    "boolean": lambda value: type(value) is bool,
}


class _Contract:
    """A tuple of fields, made ready to check items against: every hop checks every item."""

    def __init__(self, fields: tuple[Field, ...]) -> None:
        self.checks = [(f.name, f.required, f.kind, _KIND_CHECKS[f.kind]) for f in fields]
        self.known = frozenset(f.name for f in fields)

    def errors(self, item: Any) -> list[str]:
        if type(item) is not dict:
            return [NOT_AN_OBJECT]
        errors = []
        for name, required, kind, check in self.checks:
            value = item.get(name)
            if value is None:
                if required:
                    errors.append(FIELD_MISSING.format(field=name))
            elif not check(value):
                errors.append(FIELD_INVALID.format(field=name, kind=kind))
        if not self.known.issuperset(item):
            errors.extend(
                FIELD_UNKNOWN.format(field=name) for name in item if name not in self.known
            )
        return errors


_PAYLOAD = _Contract(PAYLOAD_FIELDS)
_RETRY_PAYLOAD = _Contract(RETRY_PAYLOAD_FIELDS)
_DOCUMENT = _Contract(DOCUMENT_FIELDS)


def contract_split(
    items: list[Any], errors_of: Callable[[Any], list[str]]
) -> tuple[list[Any], list[tuple[Any, list[str]]]]:
    """Split `items` into those that hold (`errors_of` finds nothing) and (item, errors) pairs."""
    valid, rejects = [], []
    for item in items:
        errors = errors_of(item)
        if errors:
            rejects.append((item, errors))
        else:
            valid.append(item)
    return valid, rejects


def payload_errors(item: Any) -> list[str]:
    """Every way `item` breaks the pushed-payload contract (empty when it holds)."""
    return _PAYLOAD.errors(item)


def retry_payload_errors(item: Any) -> list[str]:
    """Every way `item` breaks the contract of a payload waiting for its second draw."""
    return _RETRY_PAYLOAD.errors(item)


def document_errors(item: Any) -> list[str]:
    """Every way `item` breaks the tracked-document contract (empty when it holds)."""
    return _DOCUMENT.errors(item)
