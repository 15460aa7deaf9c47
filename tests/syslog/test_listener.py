"""The syslog listener as a real process, fed by logger(1), syslog-ng and raw sockets.

Each test runs the listener and a real qcluster against the real Redis and Elasticsearch, and
checks what a user sees: every line tracked once, with its mapped fields, found by the query
language; what cannot be read in the dead letter; drops and waits in /metrics.
"""

import re
import socket
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command

from core.queue import inbox
from pusher.syslog import NO_PRI
from pusher.syslog_listener import KEY_GONE, KEY_INVALID, KEY_MISSING, KEY_NOT_PUSH
from tests.conftest import ROOT
from tests.pipeline.conftest import tracked_documents, wait_tracked
from tests.support.processes import process_group_stop
from tests.support.waiting import wait_for
from tests.syslog.conftest import (
    free_port,
    listener_command,
    listener_env,
    logger_send,
    search,
)


def _by_message(docs: dict[str, dict]) -> dict[str, dict]:
    """Documents by their text, checking that no text was tracked twice."""
    texts = Counter(doc["user_message"] for doc in docs.values())
    assert [text for text, n in texts.items() if n > 1] == []
    return {doc["user_message"]: doc for doc in docs.values()}


def _metrics(api_client) -> dict[str, float]:
    """The syslog samples of /metrics, by name with labels."""
    response = api_client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for line in response.content.decode().splitlines():
        if line.startswith("logger_syslog_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_logger_lines_over_every_transport_are_tracked_once_with_their_fields(
    pipeline, syslog_listener, syslog_key, auth_client, user
):
    pipeline(first=7)
    port = syslog_listener(syslog_key).port
    run = uuid.uuid4().hex[:8]
    sends = {
        f"tcp rfc5424 {run}": (
            "--tcp", "-t", "webapp", "-p", "daemon.err", "--msgid", "M1",
            "--sd-id", "order@1", "--sd-param", 'id="42"',
        ),
        f"tcp octet {run}": ("--tcp", "--octet-count", "-t", "billing", "-p", "local0.warning"),
        f"udp rfc5424 {run}": ("--udp", "-t", "cache", "-p", "user.info"),
        f"udp rfc3164 {run}": ("--udp", "--rfc3164", "-t", "oldd", "-p", "mail.notice"),
        f"tcp rfc3164 {run}": ("--tcp", "--rfc3164", "-t", "oldt", "-p", "auth.crit"),
    }  # fmt: skip
    for message, options in sends.items():
        logger_send(port, *options, message=message)

    wait_tracked(len(sends), timeout=60)
    docs = _by_message(tracked_documents())
    assert set(docs) == set(sends)
    assert {doc["user_id"] for doc in docs.values()} == {user["user_id"]}
    assert {doc["category"] for doc in docs.values()} == {"Direct"}
    web = docs[f"tcp rfc5424 {run}"]
    assert (web["service_name"], web["severity_number"], web["severity_text"]) == (
        "webapp",
        17,
        "ERROR",
    )
    for attribute in (
        "syslog.facility:daemon",
        "syslog.severity:err",
        "syslog.format:rfc5424",
        "syslog.msgid:M1",
        "order@1.id:42",
    ):
        assert attribute in web["attributes"]
    assert any(a.startswith("syslog.hostname:") for a in web["attributes"])
    octet = docs[f"tcp octet {run}"]
    assert (octet["service_name"], octet["severity_number"]) == ("billing", 13)
    assert "syslog.facility:local0" in octet["attributes"]
    old = docs[f"udp rfc3164 {run}"]
    assert (old["service_name"], old["severity_number"]) == ("oldd", 10)
    assert {"syslog.format:rfc3164", "syslog.facility:mail"} <= set(old["attributes"])
    assert docs[f"tcp rfc3164 {run}"]["severity_text"] == "FATAL"

    # The query language finds them by the mapped fields.
    found = search(
        auth_client,
        "service:webapp AND severity:error AND attributes.syslog.facility:daemon "
        "AND attributes.order@1.id:42",
    )
    assert [doc["user_message"] for doc in found] == [f"tcp rfc5424 {run}"]
    rfc3164 = search(auth_client, f'attributes.syslog.format:rfc3164 AND "{run}"')
    assert {doc["user_message"] for doc in rfc3164} == {f"udp rfc3164 {run}", f"tcp rfc3164 {run}"}
    warned = search(auth_client, "severity:[13 TO 17] AND NOT service:webapp")
    assert [doc["user_message"] for doc in warned] == [f"tcp octet {run}"]


@pytest.fixture
def syslog_ng(tmp_path: Path):
    """Run Debian's syslog-ng in the foreground with a config; stopped afterwards."""
    procs: list[subprocess.Popen] = []

    def _run(config: str) -> subprocess.Popen:
        path = tmp_path / "syslog-ng.conf"
        path.write_text(config)
        check = subprocess.run(
            ["syslog-ng", "--syntax-only", "-f", str(path)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen(
            [
                "syslog-ng", "-F", "--no-caps", "-f", str(path),
                "--persist-file", str(tmp_path / "syslog-ng.persist"),
                "--pidfile", str(tmp_path / "syslog-ng.pid"),
                "--control", str(tmp_path / "syslog-ng.ctl"),
            ],
            stdout=(tmp_path / "syslog-ng.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        procs.append(proc)
        return proc

    yield _run
    for proc in procs:
        process_group_stop(proc, grace=5)


SYSLOG_NG_CONFIG = """@version: 3.38
options {{ stats-freq(0); keep-hostname(yes); }};
source s_counted {{ file("{counted}" flags(no-parse) program-override("shipper-a")
    host-override("edge01") default-facility(local2) default-priority(warning) follow-freq(1)); }};
source s_lines {{ file("{lines}" flags(no-parse) program-override("shipper-b") follow-freq(1)); }};
# syslog(): RFC 5424 with octet counting; network() with syslog-protocol: RFC 5424, one a line.
destination d_counted {{ syslog("127.0.0.1" port({port}) transport("tcp") persist-name("a")); }};
destination d_lines {{ network("127.0.0.1" port({port}) transport("tcp") flags(syslog-protocol)
    persist-name("b")); }};
log {{ source(s_counted); destination(d_counted); }};
log {{ source(s_lines); destination(d_lines); }};
"""


def test_syslog_ng_ships_files_of_lines_in_rfc5424(
    pipeline, syslog_listener, syslog_key, syslog_ng, auth_client, tmp_path
):
    pipeline(first=7)
    port = syslog_listener(syslog_key).port
    counted = [f'counted line {n} with [brackets] and "quotes"' for n in range(20)]
    lines = [f"newline line {n}" for n in range(10)]
    (tmp_path / "counted.txt").write_text("\n".join(counted) + "\n")
    (tmp_path / "lines.txt").write_text("\n".join(lines) + "\n")

    syslog_ng(
        SYSLOG_NG_CONFIG.format(
            counted=tmp_path / "counted.txt", lines=tmp_path / "lines.txt", port=port
        )
    )

    wait_tracked(30, timeout=60)
    docs = _by_message(tracked_documents())
    assert set(docs) == set(counted) | set(lines)
    doc = docs[counted[3]]
    assert (doc["service_name"], doc["severity_text"]) == ("shipper-a", "WARN")
    assert {"syslog.facility:local2", "syslog.hostname:edge01", "meta.sequenceId:4"} <= set(
        doc["attributes"]
    )
    assert len(search(auth_client, "service:shipper-a AND attributes.syslog.hostname:edge01")) == 20
    assert len(search(auth_client, 'service:shipper-b AND "newline line"')) == 10


def test_a_malformed_line_is_dead_lettered_and_the_connection_goes_on(
    pipeline, syslog_listener, syslog_key, user
):
    pipeline(first=7)
    port = syslog_listener(syslog_key).port

    with socket.create_connection(("127.0.0.1", port)) as sender:
        sender.sendall(
            b"<13>1 - host app - - - good one\n"
            b"not syslog at all\n"
            b"<13>1 2026-13-45T00:00:00Z host app - - - bad date\n"
            b"<13>1 - host app - - - good two\n"
        )
        wait_tracked(2, timeout=60)
        sender.sendall(b"<13>1 - host app - - - good three\n")  # the same connection
        wait_tracked(3, timeout=60)

    assert set(_by_message(tracked_documents())) == {"good one", "good two", "good three"}
    dead = inbox("syslog").dead_entries()
    assert [entry["item"]["line"] for entry in dead] == [
        "not syslog at all",
        "<13>1 2026-13-45T00:00:00Z host app - - - bad date",
    ]
    assert dead[0]["errors"] == [NO_PRI]
    assert "TIMESTAMP" in dead[1]["errors"][0]
    assert {entry["item"]["user_id"] for entry in dead} == {user["user_id"]}

    # A replay reads each line again: one fixed meanwhile (here, by hand) goes in, the
    # others come back to the dead letter.
    part = inbox("syslog").for_user(user["user_id"])
    part.dead_append(
        [({**dead[0]["item"], "line": "<13>1 - host app - - - fixed"}, ["by hand"])], at="now"
    )
    call_command("deadletters", "replay", "--inbox", "syslog")
    wait_tracked(4, timeout=60)
    wait_for(lambda: inbox("syslog").dead_letters() == 2, timeout=30, what="the 2 back")
    assert "fixed" in _by_message(tracked_documents())


def _slow_listener(start, key: str, *, queue: int, rate: int) -> int:
    """A listener whose queue holds `queue` lines, before a pipeline that takes `rate` lines a
    second (the key owner's rate limit, burst as large as a batch): slow on purpose."""
    return start(
        key,
        SYSLOG_QUEUE_SIZE=str(queue),
        SYSLOG_BATCH_SIZE=str(queue),
        INGEST_RATE_PER_SECOND=str(rate),
        INGEST_BURST=str(max(queue, rate)),
    ).port


def test_udp_drops_are_counted_when_the_queue_is_full(
    pipeline, syslog_listener, syslog_key, api_client
):
    pipeline(first=7)
    port = _slow_listener(syslog_listener, syslog_key, queue=5, rate=1)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for n in range(300):
            sender.sendto(f"<13>1 - host app - - - datagram {n}".encode(), ("127.0.0.1", port))

    def settled() -> dict[str, float] | None:
        samples = _metrics(api_client)
        received = samples.get('logger_syslog_received_total{transport="udp"}', 0)
        handed = (
            samples.get('logger_syslog_messages_total{outcome="queued"}', 0)
            + samples.get('logger_syslog_udp_dropped_total{reason="queue_full"}', 0)
            + samples.get('logger_syslog_udp_dropped_total{reason="throttled"}', 0)
        )
        return samples if received >= 250 and handed == received else None

    samples = wait_for(settled, timeout=60, what="every datagram queued or dropped")
    queued = samples['logger_syslog_messages_total{outcome="queued"}']
    assert samples['logger_syslog_udp_dropped_total{reason="queue_full"}'] > 0
    assert 5 <= queued < 50
    wait_tracked(int(queued), timeout=60)
    assert len(tracked_documents()) == queued


def test_tcp_waits_for_the_rate_limit_and_loses_nothing(
    pipeline, syslog_listener, syslog_key, api_client, tmp_path
):
    pipeline(first=7)
    port = _slow_listener(syslog_listener, syslog_key, queue=10, rate=25)
    lines = [f"paced line {n}" for n in range(100)]
    (tmp_path / "lines.txt").write_text("\n".join(lines) + "\n")

    logger_send(port, "--tcp", "-t", "pacer", "-f", str(tmp_path / "lines.txt"))

    wait_tracked(100, timeout=90)
    assert set(_by_message(tracked_documents())) == set(lines)

    def counted() -> dict[str, float] | None:
        # The listener adds its counts to Redis every so often, not at each batch.
        samples = _metrics(api_client)
        return samples if samples['logger_syslog_messages_total{outcome="queued"}'] == 100 else None

    samples = wait_for(counted, timeout=30, what="the listener's counts in /metrics")
    assert samples['logger_syslog_tcp_backpressure_total{reason="throttled"}'] > 0


@pytest.mark.parametrize("kind", ["missing", "invalid", "read_only"])
def test_without_a_usable_key_the_listener_does_not_start_and_says_why(kind, auth_client, es_index):
    key, expected = {
        "missing": (None, KEY_MISSING),
        "invalid": ("plk_0123456789abcdef_nope", KEY_INVALID),
        "read_only": ("read", KEY_NOT_PUSH),
    }[kind]
    if key == "read":
        made = auth_client.post(
            "/api/auth/keys/", {"name": "ro", "scopes": ["read"]}, format="json"
        )
        key = made.json()["key"]
    port = free_port()

    done = subprocess.run(
        listener_command(port),
        cwd=ROOT,
        env=listener_env(key),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert expected in done.stdout  # the log line
    assert f"CommandError: {expected}" in done.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_a_revoked_key_stops_the_listener(syslog_listener, syslog_key, auth_client):
    listener = syslog_listener(syslog_key)
    key_id = re.match(r"plk_([0-9a-f]+)_", syslog_key).group(1)

    assert auth_client.delete(f"/api/auth/keys/{key_id}/").status_code == 204

    def stopped() -> bool:
        # Each line makes the listener hand a batch on, and look at its key now and then.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"<13>1 - host app - - - after revocation", ("127.0.0.1", listener.port))
        return listener.proc.poll() is not None

    wait_for(stopped, timeout=30, what="the listener to stop", interval=0.5)
    assert listener.proc.returncode == 1
    assert KEY_GONE in listener.output()
