"""From a shipper's record to a message: Elastic Common Schema's fields, flattened attributes.

Both doors read records through here: `message`/`msg`/`log`/`event.original` become the
message, `@timestamp`/`timestamp` the created time, `log.level`/`level`/`severity` the
severity, `service.name`/`service` the service; every other leaf is an attribute
"dotted.key:value", with the OTLP path's caps (pusher.otlp.log_item).
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.contract import (
    ATTRIBUTES_MAX,
    DATETIME_OUT_OF_RANGE,
    SEVERITY_MAX,
    created_time_error,
    date_format,
    in_storable_range,
)
from pusher.otlp import EMPTY_BODY, log_item
from pusher.services import BatchItem

MESSAGE_KEYS = ("message", "msg", "log", "event.original")
TIME_KEYS = ("@timestamp", "timestamp")
SEVERITY_KEYS = ("log.level", "level", "severity")
SERVICE_KEYS = ("service.name", "service")
_MAPPED_KEYS = frozenset((*MESSAGE_KEYS, *TIME_KEYS, *SEVERITY_KEYS, *SERVICE_KEYS))
# Leaves and objects read of one record. Past these, the rest is never stored (only the first
# ATTRIBUTES_MAX attributes are), and a record of a million empty objects costs no more.
LEAVES_MAX = 1_000
NODES_MAX = 10_000

MESSAGE_MISSING = "message: none of the fields {fields} holds the message.".format(
    fields=", ".join(MESSAGE_KEYS)
)
TIME_INVALID = "{field}: not a date-time (ISO 8601, or epoch milliseconds)."
# OpenTelemetry's SeverityNumber for the names shippers write (syslog's among them).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SEVERITY_NUMBERS = {
    "trace": 1,
    "debug": 5,
    "info": 9,
    "informational": 9,
    "notice": 10,
    "warn": 13,
    "warning": 13,
    "error": 17,
    "err": 17,
    "critical": 21,
    "crit": 21,
    "alert": 22,
    "fatal": 21,
    "emerg": 23,
    "emergency": 23,
}


def leaves(record: dict[str, Any]) -> dict[str, Any]:
    """The record's leaves by dotted path, in order, the first of a path winning (the record
    itself when it is flat: the caller owns it, and record_item takes fields out of it).

    Nested objects are walked (an empty one or a list is a leaf); `{"log": {"level": "x"}}`
    and `{"log.level": "x"}` both give "log.level". Walks at most NODES_MAX objects and keeps
    LEAVES_MAX leaves, without recursion, so no nesting is too deep.
    """
    for value in record.values():
        if type(value) is dict:
            break
    else:
        return record  # flat, as most shippers send: nothing to walk
    found: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("", record)]
    nodes = 0
    while stack and nodes < NODES_MAX and len(found) < LEAVES_MAX:
        path, value = stack.pop()
        nodes += 1
        if isinstance(value, dict) and (value or not path):
            prefix = f"{path}." if path else ""
            # Reversed onto the stack, so that they come off in the record's order.
            stack.extend((f"{prefix}{key}", inner) for key, inner in reversed(value.items()))
        elif path not in found:
            found[path] = value
    return found


def _pick(
    fields: dict[str, Any], keys: Iterable[str], present: set[str], kind: type | None = None
) -> Any:
    """Remove and return the first of `keys` present (of type `kind`, if given), else None.

    A key taken leaves `present` too, so that once it is empty (a record of a message alone,
    the usual one) the next picks cost nothing.
    """
    if present:
        for key in keys:
            if key in present and (kind is None or isinstance(fields[key], kind)):
                present.discard(key)
                return fields.pop(key)
    return None


def created_time_of(value: Any, *, field: str) -> tuple[str | None, str | None]:
    """(created_time, None) from an ISO 8601 string or epoch milliseconds, or (None, error)."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value / 1000, UTC)
        elif isinstance(value, str) and value.strip().isdigit():
            moment = datetime.fromtimestamp(int(value) / 1000, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.strip())
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        else:
            return None, TIME_INVALID.format(field=field)
    except (ValueError, OverflowError, OSError):
        return None, TIME_INVALID.format(field=field)
    return _checked(moment, field)


def created_time_of_ns(nanoseconds: int, *, field: str) -> tuple[str | None, str | None]:
    """(created_time, None) from nanoseconds since the epoch (to the microsecond), or an error."""
    try:
        moment = _EPOCH + timedelta(microseconds=nanoseconds // 1000)
    except OverflowError:
        return None, f"{field}: {DATETIME_OUT_OF_RANGE}"
    return _checked(moment, field)


def _checked(moment: datetime, field: str) -> tuple[str | None, str | None]:
    if not in_storable_range(moment):
        return None, f"{field}: {DATETIME_OUT_OF_RANGE}"
    if (error := created_time_error(moment)) is not None:
        return None, f"{field}: {error}"
    return date_format(moment), None


def severity_of(value: Any) -> tuple[int, str]:
    """(SeverityNumber or 0, text) of a level as shippers write it: a name or a number."""
    if isinstance(value, bool):
        return 0, str(value).lower()
    if isinstance(value, int):
        return (value if 0 < value <= SEVERITY_MAX else 0), str(value)
    text = str(value)
    return SEVERITY_NUMBERS.get(text.strip().lower(), 0), text


def record_item(
    fields: dict[str, Any], *, first: Sequence[tuple[str, Any]] = (), created: Any = None
) -> BatchItem:
    """One record's leaves (see `leaves`) as a batch item for the push pipeline.

    `first` are attributes that go before the record's own (so the caps never drop them);
    `created` is a time the protocol gave outside the record (Loki's), used when the record
    names none.
    """
    # A null is no value, as in Elasticsearch: never an attribute "key:null".
    if None in fields.values():
        fields = {key: value for key, value in fields.items() if value is not None}
    # One set intersection finds which mapped fields are there (usually just the message).
    present = fields.keys() & _MAPPED_KEYS
    message = _pick(fields, MESSAGE_KEYS, present)
    created_time, error = created, None
    number, text, service = 0, "", None
    if present:  # more than the message: the usual record skips all of this
        time_key = next((key for key in TIME_KEYS if key in present), None)
        if time_key is not None:
            created_time, error = created_time_of(fields.pop(time_key), field=time_key)
        severity = _pick(fields, SEVERITY_KEYS, present)
        if severity is not None:
            number, text = severity_of(severity)
        service = _pick(fields, SERVICE_KEYS, present, str)
    errors = [error] if error else []
    if message is None:
        errors.insert(0, MESSAGE_MISSING)
    attributes = [*first, *fields.items()][:ATTRIBUTES_MAX]
    item = log_item(
        body=message,
        attributes=attributes,
        severity_number=number,
        severity_text=text,
        service_name=service,
        created_time=created_time,
    )
    if errors:
        # The record's own errors first, then what the caps found besides ("empty body" is
        # MESSAGE_MISSING said again).
        item = BatchItem(errors=[*errors, *(e for e in item.errors if e != EMPTY_BODY)])
    return item
