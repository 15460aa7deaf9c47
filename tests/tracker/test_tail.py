"""The live tail against a real uvicorn serving config.asgi, read by a real SSE client.

Messages enter the tail the way the pipeline puts them there: `documents_track`, the tracker
inbox's handler, indexes them in Elasticsearch and then appends them to the Redis Streams. The
server runs in a subprocess with the test settings and this process's Redis databases and
index alias; its keep-alive is 1 s so that the tests need not wait 15.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import ANY
from urllib.parse import urlencode

import httpx
import pytest
from django.utils import timezone
from httpx_sse import ServerSentEvent
from rest_framework.test import APIClient

from accounts.services import (
    api_key_create,
    api_key_delete,
    tokens_revoke,
    user_delete,
    user_login,
)
from accounts.tokens import ACCESS, RedisTokenUser, token_decode
from core.contract import date_format
from core.redis import store
from core.search import es_client
from tests.support.processes import answers, free_port, process_group_stop
from tests.support.sse import SseStream
from tests.support.waiting import wait_for
from tests.tracker.support import T0, document, index, minutes
from tracker.documents import index_alias
from tracker.scope import OUT_OF_SCOPE, Actor
from tracker.services import documents_track
from tracker.tail import (
    CLIENT_NAME_PREFIX,
    END_EXPIRED,
    END_REVOKED,
    POSITION_INVALID,
    RESET_DETAIL,
    TICKET_BRINGS_FILTERS,
    TICKET_INVALID,
    WATCH_CLIENT_NAME_PREFIX,
    TailCredential,
    TailNotServedHere,
    searchable_delay,
    tail_filters,
    tail_stream_key,
    tail_ticket_issue,
)

ROOT = Path(__file__).resolve().parents[2]
TAIL = "/api/tracker/messages/tail/"
TICKET = "/api/tracker/messages/tail/ticket/"
MESSAGES = "/api/tracker/messages/"
# Issue 26's example: the same query narrows search, stats, export and the tail.
ISSUE_QUERY = 'severity:error AND service:checkout AND attributes.http.status:500 AND NOT "health"'
EXPORT = "/api/tracker/messages/export/"
KEEPALIVE_SECONDS = 1
# Generous deadlines: an event leaves ~1.1 s after it is tracked (once it is searchable).
EVENT_SECONDS = 15
# The open streams' credentials are re-checked at every keep-alive (1 s here): revoked, a
# stream ends within about that, and surely within this.
REVOKED_SECONDS = 5
START_SECONDS = 30

pytestmark = pytest.mark.usefixtures("clean_index")


@dataclass(frozen=True)
class TailServer:
    """The uvicorn subprocess: where it listens, and its pid (it names its Redis clients)."""

    url: str
    pid: int

    @property
    def redis_client_name(self) -> str:
        """The name each of its streams' Redis connections carries."""
        return f"{CLIENT_NAME_PREFIX}{self.pid}"


@pytest.fixture(scope="module")
def tail_server(es_index: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TailServer]:
    """uvicorn on `config.asgi` with the test settings, on a free port, for this module."""
    port = free_port()
    log = (tmp_path_factory.mktemp("tail") / "uvicorn.log").open("w")
    # This process's environment holds TEST_REDIS_URL and the index alias the test settings
    # chose, so the server reads and writes exactly what the tests do.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "TAIL_KEEPALIVE_SECONDS": str(KEEPALIVE_SECONDS),
    }
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application"]
    options = ["--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"]
    proc = subprocess.Popen(
        [*command, *options, "--no-access-log", "--timeout-graceful-shutdown", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = TailServer(url=f"http://127.0.0.1:{port}", pid=proc.pid)
    try:
        wait_for(lambda: proc.poll() is not None or answers(server.url), START_SECONDS, "uvicorn")
        assert proc.poll() is None, Path(log.name).read_text()
        yield server
    finally:
        process_group_stop(proc, grace=10)
        log.close()


@pytest.fixture
def open_tail(tail_server: TailServer) -> Iterator[Callable[..., SseStream]]:
    """Open tail streams (closed after the test): `open_tail(token=..., **query)`."""
    streams: list[SseStream] = []

    def _open(token: str | None = None, headers: dict | None = None, **query: str) -> SseStream:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        url = f"{tail_server.url}{TAIL}" + (f"?{urlencode(query)}" if query else "")
        stream = SseStream(url, headers=sent)
        streams.append(stream)
        return stream

    yield _open
    for stream in streams:
        stream.close()


@pytest.fixture
def bob(make_user: Callable[..., dict]) -> dict:
    """A second ordinary user."""
    return make_user("bobby01")


def _token(user: dict) -> str:
    return user_login(username=user["username"], password=user["password"])["access"]


def _document(owner: dict, text: str = "hello", **fields: object) -> dict:
    """A contract document as the validator hands it to the tracker."""
    return {
        "message_id": str(uuid.uuid4()),
        "user_id": owner["user_id"],
        "user_message": text,
        "request_count": 1,
        "category": "Direct",
        "created_time": date_format(timezone.now()),
        **fields,
    }


def _track(*documents: dict) -> list[dict]:
    """Track `documents` through the tracker inbox's handler: indexed, then on the tail."""
    assert documents_track(documents=list(documents)) == []
    return list(documents)


def _is_message(event: ServerSentEvent) -> bool:
    return event.event in ("", "message") and bool(event.data)


def _named(name: str) -> Callable[[ServerSentEvent], bool]:
    return lambda event: event.event == name


def _messages(stream: SseStream, count: int) -> list[ServerSentEvent]:
    """The next `count` message events, skipping control events and keep-alives."""
    return [stream.wait_for(_is_message, EVENT_SECONDS) for _ in range(count)]


def _live(stream: SseStream) -> ServerSentEvent:
    """Wait until the stream has delivered its backlog and goes on live."""
    assert stream.response.status_code == 200, stream.response.read()
    return stream.wait_for(_named("live"), EVENT_SECONDS)


def _order(position: str) -> tuple[int, int]:
    milliseconds, sequence = position.split("-")
    return int(milliseconds), int(sequence)


def _searchable(message_id: str) -> bool:
    """Whether a search (not a realtime get) finds the message right now, with no refresh."""
    query = {"ids": {"values": [message_id]}}
    return es_client().count(index=index_alias(), query=query)["count"] == 1


def _texts(events: list[ServerSentEvent]) -> list[str]:
    return [json.loads(event.data)["user_message"] for event in events]


def _until(stream: SseStream, marker: dict) -> list[ServerSentEvent]:
    """Every message event up to and including the one of `marker` (tracked last)."""
    events = []
    while not events or json.loads(events[-1].data)["message_id"] != marker["message_id"]:
        events.append(stream.wait_for(_is_message, EVENT_SECONDS))
    return events


def _error(stream: SseStream) -> tuple[int, dict]:
    return stream.response.status_code, json.loads(stream.response.read())


# --- delivery ------------------------------------------------------------------------------


def test_events_arrive_in_order_with_the_documents_fields_once_searchable(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict
) -> None:
    stream = open_tail(token=tokens["access"])
    _live(stream)
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert stream.response.headers["cache-control"] == "no-cache"

    first = _track(*(_document(user, f"first batch {n}", request_count=n) for n in range(5)))
    second = _track(_document(user, "second batch", category="Retried", attempts=[]))
    sent = [*first, *second]
    received = []
    for _ in sent:
        event = stream.wait_for(_is_message, EVENT_SECONDS)
        # On arrival the message is searchable already: the tail is never ahead of search.
        assert _searchable(json.loads(event.data)["message_id"])
        received.append(event)

    documents = [json.loads(event.data) for event in received]
    # What search shows: the documents as sent, plus the tracked_time they were stored with.
    assert [{k: v for k, v in d.items() if k != "tracked_time"} for d in documents] == sent
    assert all(d["tracked_time"].endswith("Z") for d in documents)
    positions = [event.id for event in received]
    assert positions == sorted(positions, key=_order)
    assert len(set(positions)) == len(positions)


def test_events_wait_for_the_refresh_interval(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict
) -> None:
    stream = open_tail(token=tokens["access"])
    _live(stream)

    started = time.monotonic()
    _track(_document(user))
    _messages(stream, 1)

    # Sent once the refresh interval (1 s) has surely made it searchable, not before.
    assert time.monotonic() - started >= searchable_delay() - 0.05


# --- filters and scope ----------------------------------------------------------------------


OTLP = {"service_name": "checkout", "severity_number": 17, "severity_text": "ERROR"}


@pytest.mark.parametrize(
    ("query", "documents", "expected"),
    [
        pytest.param(
            {"q": "oworl"},
            [("HelloWorld", {}), ("hello world", {}), ("SAY HELLOWORLD!", {}), ("x", {})],
            ["HelloWorld", "SAY HELLOWORLD!"],
            id="q-mid-word-any-case",
        ),
        pytest.param(
            {"q": "STRASSE"},
            [("Hauptstraße 5", {}), ("Strase", {})],
            ["Hauptstraße 5"],
            id="q-casefolded",
        ),
        pytest.param(
            {"category": "Retried"},
            [("a", {"category": "Direct"}), ("b", {"category": "Retried"})],
            ["b"],
            id="category",
        ),
        pytest.param(
            {"service": "checkout", "severity_min": "17"},
            [
                ("err", OTLP),
                ("info", {**OTLP, "severity_number": 9}),
                ("other service", {**OTLP, "service_name": "cart"}),
                ("plain", {}),
            ],
            ["err"],
            id="service-and-severity",
        ),
        pytest.param(
            {"attribute": "region:eu"},
            [("eu", {"attributes": ["region:eu", "a:b"]}), ("us", {"attributes": ["region:us"]})],
            ["eu"],
            id="attribute",
        ),
        pytest.param(
            {"query": ISSUE_QUERY},
            [
                ("payment failed", {**OTLP, "attributes": ["http.status:500"]}),
                ("GET /health failed", {**OTLP, "attributes": ["http.status:500"]}),
                ("payment failed, 502", {**OTLP, "attributes": ["http.status:502"]}),
                ("payment info", {**OTLP, "severity_text": "INFO"}),
            ],
            ["payment failed"],
            id="query",
        ),
    ],
)
def test_filters_pass_exactly_what_search_finds(
    open_tail: Callable[..., SseStream],
    tokens: dict,
    user: dict,
    auth_client: APIClient,
    query: dict,
    documents: list,
    expected: list,
) -> None:
    stream = open_tail(token=tokens["access"], **query)
    _live(stream)
    tracked = _track(*(_document(user, text, **fields) for text, fields in documents))
    # The last one matches every filter, so once it is here nothing else is still coming.
    marker = _track(_document(user, expected[0], **dict(documents)[expected[0]]))[0]

    events = _until(stream, marker)

    assert _texts(events) == [*expected, expected[0]]
    es_client().indices.refresh(index=index_alias())
    found = auth_client.get(MESSAGES, {**query, "page_size": 500}).json()["results"]
    ours = {document["message_id"] for document in tracked}
    searched = {hit["message_id"] for hit in found if hit["message_id"] in ours}
    assert {json.loads(event.data)["message_id"] for event in events[:-1]} == searched


def test_a_trace_id_matches_as_search_does_whatever_its_case() -> None:
    owner = str(uuid.uuid4())
    filters = tail_filters(actor=Actor(user_id=owner), trace_id="ABCDEF" + "0" * 26)
    ours = {"user_id": owner, "user_message": "x", "trace_id": "abcdef" + "0" * 26}

    assert filters.matches(ours)
    assert not filters.matches({**ours, "trace_id": "1" * 32})
    assert not filters.matches({key: value for key, value in ours.items() if key != "trace_id"})


def test_a_user_sees_only_their_own_messages(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict, bob: dict
) -> None:
    stream = open_tail(token=tokens["access"])
    _live(stream)
    _track(_document(bob, "bob's"), _document(user, "mine"))
    marker = _track(_document(bob, "bob's again"), _document(user, "mine again"))[1]

    assert _texts(_until(stream, marker)) == ["mine", "mine again"]


def test_a_user_may_not_tail_another_users_messages(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict, bob: dict
) -> None:
    refused = open_tail(token=tokens["access"], user_id=bob["user_id"])
    own = open_tail(token=tokens["access"], user_id=user["user_id"])

    assert _error(refused) == (403, {"detail": OUT_OF_SCOPE, "code": "permission_denied"})
    _live(own)


def test_an_admin_tails_everyone_or_one_user(
    open_tail: Callable[..., SseStream], admin: dict, user: dict, bob: dict
) -> None:
    token = _token(admin)
    everyone = open_tail(token=token)
    only_bob = open_tail(token=token, user_id=bob["user_id"])
    _live(everyone)
    _live(only_bob)
    marker = _track(_document(user, "alice"), _document(bob, "bob"))[1]

    assert _texts(_until(everyone, marker)) == ["alice", "bob"]
    assert _texts(_until(only_bob, marker)) == ["bob"]


# --- resuming -------------------------------------------------------------------------------


@pytest.mark.parametrize("carrier", ["header", "query"])
def test_reconnecting_with_the_last_event_id_loses_and_repeats_nothing(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict, carrier: str
) -> None:
    stream = open_tail(token=tokens["access"])
    _live(stream)
    before = _track(*(_document(user, f"before {n}") for n in range(3)))
    seen = _messages(stream, 2)
    stream.close()  # gone mid-batch: the third was sent or not, the client never read it

    during = _track(*(_document(user, f"while away {n}") for n in range(4)))
    last = seen[-1].id
    resume = (
        {"headers": {"Last-Event-ID": last}} if carrier == "header" else {"last_event_id": last}
    )
    again = open_tail(token=tokens["access"], **resume)
    after = _track(_document(user, "after"))[0]

    events = _until(again, after)
    assert _texts(events) == ["before 2", *(d["user_message"] for d in during), "after"]
    assert _texts(seen) == [d["user_message"] for d in before[:2]]
    assert all(_order(event.id) > _order(last) for event in events)


def test_the_header_wins_over_the_query_parameter(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict
) -> None:
    stream = open_tail(token=tokens["access"])
    _live(stream)
    _track(_document(user, "one"), _document(user, "two"))
    first, _second = _messages(stream, 2)
    stream.close()

    # EventSource reconnects to the same URL with a newer header: the header is the newer.
    again = open_tail(
        token=tokens["access"], headers={"Last-Event-ID": first.id}, last_event_id="0-0"
    )

    assert _texts(_messages(again, 1)) == ["two"]


def _trimmed(user: dict, settings) -> tuple[str, str]:
    """Fill the user's stream until its first entry is trimmed: (that entry's id, the key)."""
    settings.TAIL_STREAM_MAXLEN = 10  # the publisher's cap: old entries are trimmed at once
    _track(_document(user, "the oldest"))
    stream_key = tail_stream_key(user_id=user["user_id"])
    (first_id, _), *_ = store().xrange(stream_key, count=1)
    # Approximate trimming drops whole nodes of 100 entries: push the first one out.
    for batch in range(4):
        _track(*(_document(user, f"filler {batch}.{n:02d}") for n in range(100)))
    assert store().xrange(stream_key, count=1)[0][0] != first_id
    return first_id, stream_key


def test_a_position_outside_the_window_gets_a_reset_then_the_stream_goes_on(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict, settings
) -> None:
    first_id, stream_key = _trimmed(user, settings)
    newest = store().xrevrange(stream_key, count=1)[0][0]

    stream = open_tail(token=tokens["access"], headers={"Last-Event-ID": first_id})
    reset = stream.next_event(EVENT_SECONDS)
    after = _track(_document(user, "after the reset"))[0]

    assert reset.event == "reset"
    assert reset.id == newest
    assert json.loads(reset.data) == {"position": newest, "detail": RESET_DETAIL}
    assert _texts(_until(stream, after)) == ["after the reset"]


def test_a_position_inside_a_trimmed_window_resumes_without_a_reset(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict, settings
) -> None:
    _, stream_key = _trimmed(user, settings)
    last_two = store().xrevrange(stream_key, count=2)

    stream = open_tail(token=tokens["access"], headers={"Last-Event-ID": last_two[1][0]})

    first = stream.next_event(EVENT_SECONDS)
    assert (first.id, json.loads(first.data)["user_message"]) == (last_two[0][0], "filler 3.99")


@pytest.mark.parametrize(
    "position",
    [
        lambda: f"{int(time.time() * 1000) + 3_600_000}-0",
        lambda: f"{2**64 - 1}-{2**64 - 1}",  # the largest Redis can hold
    ],
    ids=["an-hour-ahead", "the-largest"],
)
def test_a_position_this_stream_never_gave_out_gets_a_reset(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict, position: Callable[[], str]
) -> None:
    _track(_document(user))

    stream = open_tail(token=tokens["access"], headers={"Last-Event-ID": position()})

    assert stream.next_event(EVENT_SECONDS).event == "reset"


def test_a_malformed_position_is_refused(open_tail: Callable[..., SseStream], tokens: dict) -> None:
    by_header = open_tail(token=tokens["access"], headers={"Last-Event-ID": "yesterday"})
    by_query = open_tail(token=tokens["access"], last_event_id="12")

    assert _error(by_header) == (400, {"last_event_id": [POSITION_INVALID]})
    assert _error(by_query) == (400, {"last_event_id": [POSITION_INVALID]})


@pytest.mark.parametrize(
    "position",
    [
        "0-99999999999999999999",  # 20 digits, but past an unsigned 64-bit sequence
        "18446744073709551616-0",  # 2**64 milliseconds
        "\u0661\u0667-\u0660",  # Arabic-Indic digits
    ],
)
def test_a_position_past_what_redis_can_hold_is_refused(
    open_tail: Callable[..., SseStream], tokens: dict, position: str
) -> None:
    by_query = open_tail(token=tokens["access"], last_event_id=position)

    assert _error(by_query) == (400, {"last_event_id": [POSITION_INVALID]})
    if position.isascii():  # a header carries ASCII only
        by_header = open_tail(token=tokens["access"], headers={"Last-Event-ID": position})
        assert _error(by_header) == (400, {"last_event_id": [POSITION_INVALID]})


def test_a_keep_alive_comes_when_nothing_else_does_and_carries_the_position(
    tail_server: TailServer, tokens: dict, user: dict
) -> None:
    headers = {"Authorization": f"Bearer {tokens['access']}"}
    url = f"{tail_server.url}{TAIL}?q=needle"
    lines: list[str] = []
    with httpx.stream("GET", url, headers=headers, timeout=EVENT_SECONDS) as response:
        events = response.iter_lines()
        # Only once the stream has said where it starts ("live" and a blank line) is the
        # document surely after its start.
        for line in events:
            lines.append(line)
            if line == "" and "event: live" in lines:
                break
        skipped = _track(_document(user, "no match"))[0]
        position = store().xrevrange(tail_stream_key(user_id=user["user_id"]), count=1)[0][0]
        deadline = time.monotonic() + EVENT_SECONDS
        for line in events:
            lines.append(line)
            if line == ": keep-alive" and f"id: {position}" in lines:
                break
            assert time.monotonic() < deadline, lines

    # The message did not match, but the position moved past it, so a resume skips it.
    assert "event: position" in lines
    assert skipped["user_message"] not in "".join(lines)


# --- tickets --------------------------------------------------------------------------------


def _tickets() -> list[str]:
    """Every live tail ticket (SCAN, which a cluster client runs on every master; KEYS would
    ask one)."""
    return list(store().scan_iter(match="tail:ticket:*"))


def test_a_ticket_opens_one_stream_with_its_filters_then_is_spent(
    open_tail: Callable[..., SseStream], auth_client: APIClient, user: dict
) -> None:
    issued = auth_client.post(TICKET, {"q": "wanted"}, format="json")
    assert issued.status_code == 201, issued.content
    ticket = issued.json()["ticket"]
    assert issued.json()["expires_in"] == 30

    stream = open_tail(ticket=ticket)
    _live(stream)
    marker = _track(_document(user, "not this"), _document(user, "the wanted one"))[1]
    assert _texts(_until(stream, marker)) == ["the wanted one"]

    again = open_tail(ticket=ticket)
    assert _error(again) == (401, {"detail": TICKET_INVALID, "code": "ticket_invalid"})


def test_a_ticket_expires(
    open_tail: Callable[..., SseStream], auth_client: APIClient, settings
) -> None:
    settings.TAIL_TICKET_SECONDS = 1
    ticket = auth_client.post(TICKET, {}, format="json").json()["ticket"]
    wait_for(lambda: not _tickets(), 10, "the ticket to expire", 0.1)

    stream = open_tail(ticket=ticket)

    assert _error(stream) == (401, {"detail": TICKET_INVALID, "code": "ticket_invalid"})


def test_a_ticket_brings_its_own_filters(
    open_tail: Callable[..., SseStream], auth_client: APIClient
) -> None:
    ticket = auth_client.post(TICKET, {"q": "a"}, format="json").json()["ticket"]

    stream = open_tail(ticket=ticket, q="b")

    assert _error(stream) == (400, {"ticket": [TICKET_BRINGS_FILTERS]})


def test_a_ticket_is_refused_for_another_users_messages(auth_client: APIClient, bob: dict) -> None:
    response = auth_client.post(TICKET, {"user_id": bob["user_id"]}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == OUT_OF_SCOPE
    assert not _tickets()


def test_a_ticket_needs_a_token(api_client: APIClient) -> None:
    response = api_client.post(TICKET, {}, format="json")

    assert response.status_code == 401


def test_the_stream_ends_when_the_token_behind_it_expires(
    open_tail: Callable[..., SseStream], user: dict
) -> None:
    actor = RedisTokenUser({key: user[key] for key in ("user_id", "username", "role")})
    ticket = tail_ticket_issue(
        actor=actor, credential=TailCredential(expires=time.time() + 2), filters={}
    )

    stream = open_tail(ticket=ticket)
    _live(stream)

    assert _end(stream, EVENT_SECONDS) == {"position": ANY, "reason": END_EXPIRED}


def _end(stream: SseStream, timeout: float = REVOKED_SECONDS) -> dict:
    """The data of the stream's `end` event, once the stream has closed after it."""
    end = stream.wait_for(_named("end"), timeout)
    with pytest.raises(EOFError):
        stream.next_event(timeout)
    return json.loads(end.data)


def _logout(user: dict, access: str) -> None:
    tokens_revoke(access_claims=token_decode(raw=access, token_type=ACCESS))


def _delete_key(user: dict, key_id: str) -> None:
    assert api_key_delete(user_id=user["user_id"], key_id=key_id)


def _remove_user(user: dict, _credential: str) -> None:
    assert user_delete(username=user["username"]) == user["user_id"]


@pytest.mark.parametrize("revoke", [_logout, _remove_user], ids=["logout", "user-removed"])
def test_a_stream_ends_soon_after_the_token_behind_it_is_revoked(
    open_tail: Callable[..., SseStream],
    tokens: dict,
    user: dict,
    revoke: Callable[[dict, str], None],
) -> None:
    stream = open_tail(token=tokens["access"])
    _live(stream)

    revoke(user, tokens["access"])

    assert _end(stream)["reason"] == END_REVOKED


def test_a_tickets_stream_ends_soon_after_the_token_that_asked_for_it_is_revoked(
    open_tail: Callable[..., SseStream], auth_client: APIClient, tokens: dict, user: dict
) -> None:
    ticket = auth_client.post(TICKET, {}, format="json").json()["ticket"]
    stream = open_tail(ticket=ticket)
    _live(stream)

    _logout(user, tokens["access"])

    assert _end(stream)["reason"] == END_REVOKED


@pytest.mark.parametrize("revoke", [_delete_key, _remove_user], ids=["key-deleted", "owner-gone"])
def test_a_stream_opened_with_an_api_key_ends_soon_after_the_key_is_revoked(
    open_tail: Callable[..., SseStream], admin: dict, revoke: Callable[[dict, str], None]
) -> None:
    # An admin's key reads everyone's messages: a leaked one must stop at once when deleted.
    key = api_key_create(user_id=admin["user_id"], name="leaked", scopes=["read"])
    stream = open_tail(headers={"X-API-Key": key["key"]})
    _live(stream)

    revoke(admin, key["key_id"])

    assert _end(stream)["reason"] == END_REVOKED


def test_revoking_one_credential_ends_only_its_streams(
    open_tail: Callable[..., SseStream], tokens: dict, user: dict
) -> None:
    # One watcher checks every open stream's credential: it must tell them apart.
    other = _token(user)  # a second login: a credential of its own
    doomed = [open_tail(token=tokens["access"]) for _ in range(2)]
    kept = open_tail(token=other)
    for stream in [*doomed, kept]:
        _live(stream)

    _logout(user, tokens["access"])

    assert [_end(stream)["reason"] for stream in doomed] == [END_REVOKED, END_REVOKED]
    message = _track(_document(user, "still here"))[0]
    assert _texts(_until(kept, message)) == ["still here"]


@pytest.mark.single_redis  # counts connections in one server's CLIENT LIST
def test_open_streams_share_one_connection_for_their_credential_checks(
    tail_server: TailServer, open_tail: Callable[..., SseStream], tokens: dict, user: dict
) -> None:
    watcher = f"{WATCH_CLIENT_NAME_PREFIX}{tail_server.pid}"
    streams = [open_tail(token=tokens["access"]) for _ in range(4)]
    for stream in streams:
        _live(stream)

    # The first round starts one keep-alive after the first stream opened.
    wait_for(lambda: _redis_clients(watcher) == 1, 10, "the watcher's connection", 0.05)
    assert _redis_clients(tail_server.redis_client_name) == 4  # and one XREAD each


def test_a_stream_opened_with_an_api_key_goes_on_while_the_key_holds(
    open_tail: Callable[..., SseStream], user: dict
) -> None:
    key = api_key_create(user_id=user["user_id"], name="grafana", scopes=["read"])
    stream = open_tail(headers={"X-API-Key": key["key"]})
    _live(stream)
    # Each message takes over a second to come (the refresh interval): the credential is
    # checked meanwhile, and found to hold.
    first = _track(_document(user, "one"))[0]
    _until(stream, first)
    second = _track(_document(user, "two"))[0]

    assert _texts(_until(stream, second)) == ["two"]


# --- serving --------------------------------------------------------------------------------


def test_without_credentials_the_tail_answers_401(open_tail: Callable[..., SseStream]) -> None:
    stream = open_tail()

    status, body = _error(stream)
    assert status == 401
    assert body["code"] == "not_authenticated"


def test_the_wsgi_server_refuses_the_tail_and_leaves_the_ticket_unspent(
    auth_client: APIClient, open_tail: Callable[..., SseStream]
) -> None:
    ticket = auth_client.post(TICKET, {}, format="json").json()["ticket"]

    # The test client is WSGI, like gunicorn: a stream there would pin a sync worker.
    response = APIClient().get(TAIL, {"ticket": ticket})

    assert response.status_code == 404
    assert response.json()["detail"] == TailNotServedHere.default_detail
    _live(open_tail(ticket=ticket))


def _redis_clients(name: str) -> int:
    return sum(1 for client in store().client_list() if client.get("name") == name)


@pytest.mark.single_redis  # counts connections in one server's CLIENT LIST
def test_closing_a_stream_frees_its_redis_connection_at_once(
    tail_server: TailServer, open_tail: Callable[..., SseStream], tokens: dict, user: dict
) -> None:
    name = tail_server.redis_client_name
    wait_for(lambda: _redis_clients(name) == 0, 10, "earlier tests' streams closed", 0.05)
    streams = [open_tail(token=tokens["access"]) for _ in range(3)]
    for stream in streams:
        _live(stream)
    # Each stream holds its connection in XREAD BLOCK between messages.
    wait_for(lambda: _redis_clients(name) == 3, 10, "three stream connections", 0.05)

    streams[0].close()
    wait_for(lambda: _redis_clients(name) == 2, 5, "one connection closed", 0.05)
    for stream in streams[1:]:
        stream.close()
    wait_for(lambda: _redis_clients(name) == 0, 5, "every connection closed", 0.05)


def test_a_client_gone_during_the_first_redis_command_frees_its_connection_too(
    tail_server: TailServer, open_tail: Callable[..., SseStream], tokens: dict, user: dict
) -> None:
    # A reset goes out before the stream's first Redis command, so a client that leaves on
    # reading it leaves while that command (and the connection's set-up) is under way: the
    # moment a cancellation used to get lost in the Redis client.
    name = tail_server.redis_client_name
    _track(_document(user))
    for _ in range(20):
        future = f"{int(time.time() * 1000) + 3_600_000}-0"
        stream = open_tail(token=tokens["access"], headers={"Last-Event-ID": future})
        assert stream.next_event(EVENT_SECONDS).event == "reset"
        stream.close()

    wait_for(lambda: _redis_clients(name) == 0, 5, "every connection closed", 0.05)


def test_the_asgi_process_streams_a_whole_export_in_order(
    tail_server: TailServer, tokens: dict, user: dict
) -> None:
    # More rows than one 64 KB chunk holds, so that the stream is several thread hops long.
    documents = [
        document(user_id=user["user_id"], created_time=T0 + minutes(n), user_message=f"row {n}")
        for n in range(1_500)
    ]
    index(*documents)
    headers = {"Authorization": f"Bearer {tokens['access']}"}

    answer = httpx.get(f"{tail_server.url}{EXPORT}", headers=headers, timeout=60)

    assert answer.status_code == 200, answer.text
    rows = [json.loads(line) for line in answer.text.splitlines()]
    assert int(answer.headers["X-Total-Count"]) == len(rows) == 1_500
    assert [row["user_message"] for row in rows] == [f"row {n}" for n in reversed(range(1_500))]
