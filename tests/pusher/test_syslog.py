"""The syslog parser and the TCP framing: pure logic, no listener and no Redis."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from pusher.syslog import (
    BAD_SD,
    BAD_TIMESTAMP,
    EMPTY_MESSAGE,
    NO_PRI,
    SyslogError,
    line_item,
    syslog_parse,
)
from pusher.syslog_listener import tcp_frames

RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BOM = "\ufeff".encode()


def test_rfc5424_example_with_bom_and_no_structured_data():
    # RFC 5424, section 6.5, example 1.
    raw = (
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
        + BOM
        + b"'su root' failed for lonvick on /dev/pts/8"
    )

    record = syslog_parse(raw)

    assert (record.format, record.facility, record.severity) == ("rfc5424", 4, 2)
    assert record.hostname == "mymachine.example.com"
    assert (record.app_name, record.procid, record.msgid) == ("su", None, "ID47")
    assert record.message == "'su root' failed for lonvick on /dev/pts/8"
    assert record.created == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)


def test_rfc5424_structured_data_with_escapes_becomes_attributes():
    raw = (
        b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - "
        b'[exampleSDID@32473 iut="3" eventSource="Application"][origin]'
        b'[x q="a\\"b\\]c\\\\d\\e"] %% It\'s time to make the do-nuts.'
    )

    item = line_item(raw, received=RECEIVED)

    assert item.errors == []
    assert item.user_message == "%% It's time to make the do-nuts."
    assert item.extra["service_name"] == "myproc"
    assert item.extra["severity_number"] == 10
    assert item.extra["severity_text"] == "INFO"
    assert item.extra["attributes"][:5] == [
        "syslog.facility:local4",
        "syslog.severity:notice",
        "syslog.format:rfc5424",
        "syslog.hostname:192.0.2.1",
        "syslog.procid:8710",
    ]
    assert item.extra["attributes"][5:] == [
        "exampleSDID@32473.iut:3",
        "exampleSDID@32473.eventSource:Application",
        "origin:",
        'x.q:a"b]c\\d\\e',
        # 2003 is outside the window a client may choose: received time, original kept.
        "syslog.timestamp:2003-08-24T05:14:15.000003-07:00",
    ]
    assert item.extra["created_time"] == "2026-01-02T03:04:05Z"


def test_rfc5424_recent_timestamp_is_the_created_time():
    stamp = datetime.now(UTC) - timedelta(minutes=5)
    raw = f"<14>1 {stamp.isoformat()} host app 1 - - recent".encode()

    item = line_item(raw, received=RECEIVED)

    assert datetime.fromisoformat(item.extra["created_time"]) == stamp
    assert not any(a.startswith("syslog.timestamp:") for a in item.extra["attributes"])


@pytest.mark.parametrize(
    ("severity", "number", "text", "name"),
    [
        (0, 24, "FATAL", "emerg"),
        (1, 22, "FATAL", "alert"),
        (2, 21, "FATAL", "crit"),
        (3, 17, "ERROR", "err"),
        (4, 13, "WARN", "warning"),
        (5, 10, "INFO", "notice"),
        (6, 9, "INFO", "info"),
        (7, 5, "DEBUG", "debug"),
    ],
)
def test_each_severity_maps_to_opentelemetry_numbers_and_names(severity, number, text, name):
    item = line_item(f"<{8 + severity}>1 - - - - - - hi".encode(), received=RECEIVED)

    assert (item.extra["severity_number"], item.extra["severity_text"]) == (number, text)
    assert f"syslog.severity:{name}" in item.extra["attributes"]
    assert "syslog.facility:user" in item.extra["attributes"]


@pytest.mark.parametrize(
    ("raw", "hostname", "tag", "pid", "message"),
    [
        (
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick",
            "mymachine",
            "su",
            None,
            "'su root' failed for lonvick",
        ),
        (b"<13>Oct  1 02:03:04 sshd[42]: Accepted key", None, "sshd", "42", "Accepted key"),
        (b"<13>Dec  6 10:00:00 web1 nginx[7]: GET /", "web1", "nginx", "7", "GET /"),
        (b"<13>myapp: no timestamp", None, "myapp", None, "no timestamp"),
        (b"<13>just some text", None, None, None, "just some text"),
        (
            b"<13>2026-12-06T10:00:00.5+01:00 host1 app: iso stamp",
            "host1",
            "app",
            None,
            "iso stamp",
        ),
    ],
)
def test_rfc3164_variants(raw, hostname, tag, pid, message):
    record = syslog_parse(raw)

    assert record.format == "rfc3164"
    assert (record.hostname, record.app_name, record.procid) == (hostname, tag, pid)
    assert record.message == message


def test_rfc3164_keeps_its_timestamp_as_written_and_uses_the_received_time():
    item = line_item(b"<30>Oct  1 02:03:04 box cron[1]: ran", received=RECEIVED)

    assert item.extra["created_time"] == "2026-01-02T03:04:05Z"
    assert "syslog.timestamp:Oct  1 02:03:04" in item.extra["attributes"]
    assert "syslog.facility:daemon" in item.extra["attributes"]
    assert item.extra["service_name"] == "cron"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"no pri at all", NO_PRI),
        (b"<192>1 - - - - - - too high", NO_PRI),
        (b"<13>1 yesterday host app - - - x", BAD_TIMESTAMP.format(value="yesterday")),
        (b"<13>1 2026-12-06 host app - - - x", BAD_TIMESTAMP.format(value="2026-12-06")),
        (
            b'<13>1 - host app - - [id a="open',
            BAD_SD.format(problem="unterminated PARAM-VALUE", pos=32),
        ),
        (
            b"<13>1 - host app - - [id a=1] x",
            BAD_SD.format(problem='expected PARAM-NAME="', pos=25),
        ),
        (b"<13>1 - host app - - nosd x", BAD_SD.format(problem="expected '-' or '['", pos=21)),
    ],
)
def test_malformed_messages_say_why(raw, error):
    with pytest.raises(SyslogError) as caught:
        syslog_parse(raw)
    assert str(caught.value) == error
    assert line_item(raw, received=RECEIVED).errors == [error]


def test_a_message_without_text_is_refused_and_a_long_one_cut():
    assert line_item(b"<13>1 - - app - - -", received=RECEIVED).errors == [EMPTY_MESSAGE]
    assert line_item(b"<13>app:    ", received=RECEIVED).errors == [EMPTY_MESSAGE]

    item = line_item(b"<13>1 - - app - - - " + b"x" * 6000, received=RECEIVED)

    assert len(item.user_message) == 5000
    assert item.extra["truncated"] is True


def test_bytes_that_are_not_utf8_are_replaced_not_refused():
    item = line_item(b"<13>app: caf\xe9", received=RECEIVED)

    assert item.user_message == "caf\ufffd"


def _frames(data: bytes, max_bytes: int = 64, limit: int = 128) -> list[tuple[bytes, bool]]:
    async def collect() -> list[tuple[bytes, bool]]:
        reader = asyncio.StreamReader(limit=limit)
        reader.feed_data(data)
        reader.feed_eof()
        return [frame async for frame in tcp_frames(reader, max_bytes)]

    return asyncio.run(collect())


def test_framing_is_detected_frame_by_frame():
    counted = b"<13>1 - - a - - - two"
    data = (
        b"<13>1 - - a - - - one\n"
        + str(len(counted)).encode()
        + b" "
        + counted
        + b"\n\n<13>three\r\n"
        + b"12abc not a count\n"
        + b"5 <13>x"
        + b"<13>last, no LF"
    )

    assert _frames(data) == [
        (b"<13>1 - - a - - - one", False),
        (counted, False),
        (b"<13>three\r", False),
        (b"12abc not a count", False),
        (b"<13>x", False),
        (b"<13>last, no LF", False),
    ]


def test_frames_over_the_maximum_are_cut_and_the_stream_goes_on():
    long_line = b"<13>" + b"y" * 300  # past the reader's buffer limit too
    data = long_line + b"\n" + b"200 " + b"z" * 200 + b"<13>after\n"

    frames = _frames(data, max_bytes=16, limit=32)

    assert frames == [(long_line[:16], True), (b"z" * 16, True), (b"<13>after", False)]
