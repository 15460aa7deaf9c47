"""Syslog in: parse one RFC 5424 or RFC 3164 message into a batch item for the push pipeline.

A message starts with `<PRI>`. `<PRI>` followed by a version and a space is RFC 5424 and is
read strictly (header fields, timestamp, structured data); anything else after `<PRI>` is the
older BSD format, RFC 3164, read as leniently as the senders in the wild write it: an optional
timestamp, an optional hostname, then `TAG[PID]: MSG`. A message without `<PRI>`, or an RFC
5424 one that breaks its grammar, is malformed: the caller dead-letters it with the error.

Mapping (see docs/syslog.md):

- MSG → the message (a UTF-8 BOM dropped; cut to 5,000 characters with `truncated: true`);
- APP-NAME (5424) or TAG (3164) → `service_name`;
- severity → `severity_number` (OpenTelemetry's scale) and `severity_text` (its short name);
- the 5424 TIMESTAMP → `created_time`, when it lies in the window a client may choose;
- facility, severity name, hostname, procid, msgid and the format → `syslog.*` attributes;
  each structured-data parameter → `<SD-ID>.<name>:<value>`.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.contract import (
    ATTRIBUTES_MAX,
    MESSAGE_BLANK,
    MESSAGE_MAX_LENGTH,
    created_time_error,
    date_format,
    message_text_error,
)
from pusher.otlp import ATTRIBUTE_MAX_LENGTH, NAME_MAX_LENGTH
from pusher.services import BatchItem

# RFC 5424's severities, by code, with OpenTelemetry's SeverityNumber and short name for each:
# the three worst all read as FATAL (an emergency the worst of them), notice as a raised INFO.
SEVERITIES = (
    ("emerg", 24, "FATAL"),
    ("alert", 22, "FATAL"),
    ("crit", 21, "FATAL"),
    ("err", 17, "ERROR"),
    ("warning", 13, "WARN"),
    ("notice", 10, "INFO"),
    ("info", 9, "INFO"),
    ("debug", 5, "DEBUG"),
)
# RFC 5424's facilities by code, with the names syslog(3) and logger(1) use.
FACILITIES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    *(f"local{n}" for n in range(8)),
)
PRI_MAX = len(FACILITIES) * 8 - 1  # 191
NILVALUE = "-"
BOM = "\ufeff"

# Error texts (tests assert on these).
NO_PRI = "not a syslog message: it must start with <PRI>, a number from 0 to 191 in brackets"
BAD_HEADER = "RFC 5424 header: expected {field} at position {pos}"
BAD_TIMESTAMP = "RFC 5424 TIMESTAMP: not a date-time with a time zone: {value!r}"
BAD_SD = "RFC 5424 STRUCTURED-DATA: {problem} at position {pos}"
EMPTY_MESSAGE = f"MSG: {MESSAGE_BLANK}"

_PRI = re.compile(r"<(\d{1,3})>")
# RFC 5424's header after PRI: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID,
# each field printable US-ASCII of its maximum length.
_HEADER_FIELDS = (
    ("TIMESTAMP", 64),
    ("HOSTNAME", 255),
    ("APP-NAME", 48),
    ("PROCID", 128),
    ("MSGID", 32),
)
_VERSION = re.compile(r"([1-9]\d{0,2}) ")
_PRINTUSASCII = re.compile(r"[!-~]+")
_SD_NAME = re.compile(r"[!#-<>-\\^-~]{1,32}")  # PRINTUSASCII but '=', SP, ']' and '"'
# RFC 3164: "Mmm dd hh:mm:ss" (the day space-padded), or the ISO form rsyslog writes instead.
_BSD_TIMESTAMP = re.compile(
    r"((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) "
)
# The TAG of `TAG[PID]: MSG` or `TAG: MSG`: no space, no bracket, no colon.
_BSD_TAG = re.compile(r"([^\s\[\]:]{1,128})(?:\[([^\]\s]{1,128})\])?: ?")


class SyslogError(ValueError):
    """A message this module cannot read; its text says why and where."""


@dataclass
class SyslogRecord:
    """One parsed syslog message, whichever format it came in."""

    format: str  # "rfc5424" or "rfc3164"
    facility: int
    severity: int
    message: str
    timestamp: str | None = None  # as written
    created: datetime | None = None  # the timestamp, when it names an instant (5424)
    hostname: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)


def _pri(text: str) -> tuple[int, int, int]:
    """Facility, severity and where PRI ends; SyslogError when there is none."""
    match = _PRI.match(text)
    if match is None or int(match.group(1)) > PRI_MAX:
        raise SyslogError(NO_PRI)
    value = int(match.group(1))
    return value >> 3, value & 7, match.end()


def _header_field(text: str, pos: int, name: str, size: int) -> tuple[str | None, int]:
    """One header field at `pos` and the position after its space (None for the NILVALUE)."""
    match = _PRINTUSASCII.match(text, pos)
    if match is None or len(match.group()) > size or not text.startswith(" ", match.end()):
        raise SyslogError(BAD_HEADER.format(field=f"{name} and a space", pos=pos))
    value = match.group()
    return (None if value == NILVALUE else value), match.end() + 1


def _sd_value(text: str, pos: int) -> tuple[str, int]:
    """A PARAM-VALUE after its opening quote, unescaped, and the position after its close."""
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\]':
            char, pos = text[pos + 1], pos + 1  # the three escapes; any other "\" is itself
        out.append(char)
        pos += 1
    raise SyslogError(BAD_SD.format(problem="unterminated PARAM-VALUE", pos=pos))


def _structured_data(text: str, pos: int) -> tuple[list[tuple[str, list[tuple[str, str]]]], int]:
    """STRUCTURED-DATA at `pos`: its elements and where it ends."""
    if text.startswith(NILVALUE, pos):
        return [], pos + 1
    elements: list[tuple[str, list[tuple[str, str]]]] = []
    while text.startswith("[", pos):
        sd_id = _SD_NAME.match(text, pos + 1)
        if sd_id is None:
            raise SyslogError(BAD_SD.format(problem="expected an SD-ID", pos=pos + 1))
        pos, params = sd_id.end(), []
        while text.startswith(" ", pos):
            name = _SD_NAME.match(text, pos + 1)
            if name is None or not text.startswith('="', name.end()):
                raise SyslogError(BAD_SD.format(problem='expected PARAM-NAME="', pos=pos + 1))
            value, pos = _sd_value(text, name.end() + 2)
            params.append((name.group(), value))
        if not text.startswith("]", pos):
            raise SyslogError(BAD_SD.format(problem="expected ']'", pos=pos))
        elements.append((sd_id.group(), params))
        pos += 1
    if not elements:
        raise SyslogError(BAD_SD.format(problem="expected '-' or '['", pos=pos))
    return elements, pos


def _timestamp(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    # RFC 5424's FULL-DATE "T" FULL-TIME: always with its offset, never a bare date.
    if parsed is None or parsed.tzinfo is None or "T" not in value.upper():
        raise SyslogError(BAD_TIMESTAMP.format(value=value))
    return parsed


def _rfc5424(text: str, pos: int, facility: int, severity: int) -> SyslogRecord:
    version = _VERSION.match(text, pos)
    if version is None:  # the caller checked; kept for a direct call
        raise SyslogError(BAD_HEADER.format(field="VERSION", pos=pos))
    pos = version.end()
    values = []
    for name, size in _HEADER_FIELDS:
        value, pos = _header_field(text, pos, name, size)
        values.append(value)
    timestamp, hostname, app_name, procid, msgid = values
    created = _timestamp(timestamp) if timestamp else None
    if pos >= len(text):
        raise SyslogError(BAD_HEADER.format(field="STRUCTURED-DATA", pos=pos))
    elements, pos = _structured_data(text, pos)
    if pos < len(text) and text[pos] != " ":
        raise SyslogError(BAD_SD.format(problem="expected a space before MSG", pos=pos))
    message = text[pos + 1 :].removeprefix(BOM)
    return SyslogRecord(
        format="rfc5424",
        facility=facility,
        severity=severity,
        message=message,
        timestamp=timestamp,
        created=created,
        hostname=hostname,
        app_name=app_name,
        procid=procid,
        msgid=msgid,
        structured_data=elements,
    )


def _rfc3164(text: str, pos: int, facility: int, severity: int) -> SyslogRecord:
    record = SyslogRecord(format="rfc3164", facility=facility, severity=severity, message="")
    stamp = _BSD_TIMESTAMP.match(text, pos)
    if stamp is not None:
        record.timestamp, pos = stamp.group(1), stamp.end()
        # After a timestamp comes the hostname, unless the sender left it out and the next
        # word is already the tag ("sshd[42]:", "cron:").
        host = _PRINTUSASCII.match(text, pos)
        if host and text.startswith(" ", host.end()) and not _BSD_TAG.fullmatch(host.group()):
            record.hostname, pos = host.group(), host.end() + 1
    tag = _BSD_TAG.match(text, pos)
    if tag is not None:
        record.app_name, record.procid, pos = tag.group(1), tag.group(2), tag.end()
    record.message = text[pos:]
    return record


def syslog_parse(raw: bytes) -> SyslogRecord:
    """Parse one syslog message (one frame or datagram); SyslogError when it is malformed."""
    # RFC 5424 asks for UTF-8; a byte that is not decodes to U+FFFD rather than losing the line.
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n\x00")
    facility, severity, pos = _pri(text)
    if _VERSION.match(text, pos):
        return _rfc5424(text, pos, facility, severity)
    return _rfc3164(text, pos, facility, severity)


def _cut(value: str, size: int) -> str:
    return value if len(value) <= size else value[:size]


def _attributes(record: SyslogRecord) -> list[str]:
    """The record's fields as "key:value" keywords, at most ATTRIBUTES_MAX of them."""
    pairs: list[tuple[str, str | None]] = [
        ("syslog.facility", FACILITIES[record.facility]),
        ("syslog.severity", SEVERITIES[record.severity][0]),
        ("syslog.format", record.format),
        ("syslog.hostname", record.hostname),
        ("syslog.procid", record.procid),
        ("syslog.msgid", record.msgid),
    ]
    if record.format == "rfc3164":  # no year nor zone: kept as written, never the created_time
        pairs.append(("syslog.timestamp", record.timestamp))
    for sd_id, params in record.structured_data:
        if not params:  # the element alone says something ("[origin]"): keep that it came
            pairs.append((sd_id, ""))
        pairs += [(f"{sd_id}.{name}", value) for name, value in params]
    keywords = [f"{key}:{value}" for key, value in pairs if value is not None]
    return [_cut(keyword, ATTRIBUTE_MAX_LENGTH) for keyword in keywords[:ATTRIBUTES_MAX]]


def record_item(record: SyslogRecord, *, received: datetime) -> BatchItem:
    """A parsed record as a batch item for the push pipeline, or the errors that refuse it."""
    message = record.message
    extra: dict[str, Any] = {}
    if len(message) > MESSAGE_MAX_LENGTH:
        message, extra["truncated"] = message[:MESSAGE_MAX_LENGTH], True
    problem = message_text_error(message)
    if problem is not None:
        return BatchItem(errors=[EMPTY_MESSAGE if problem == MESSAGE_BLANK else f"MSG: {problem}"])
    # Decoded with replacement characters, so every keyword is storable text.
    attributes = _attributes(record)
    _, number, text = SEVERITIES[record.severity]
    extra.update(severity_number=number, severity_text=text, attributes=attributes)
    if record.app_name:
        extra["service_name"] = _cut(record.app_name, NAME_MAX_LENGTH)
    # The line's own time when it is one a client may choose (not too old, not ahead);
    # otherwise when the listener received it, the original kept as syslog.timestamp.
    created = record.created
    if created is None or created_time_error(created) is not None:
        created = received
        if record.created is not None and record.timestamp:
            extra["attributes"] = [*attributes, f"syslog.timestamp:{record.timestamp}"][
                :ATTRIBUTES_MAX
            ]
    extra["created_time"] = date_format(created)
    return BatchItem(user_message=message, extra=extra)


def line_item(raw: bytes, *, received: datetime) -> BatchItem:
    """One raw syslog message as a batch item, or its errors (malformed or refused)."""
    try:
        record = syslog_parse(raw)
    except SyslogError as exc:
        return BatchItem(errors=[str(exc)])
    return record_item(record, received=received)
