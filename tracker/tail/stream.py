"""The live tail: each newly tracked message that matches a client's filters, as server-sent events.

The source is the Redis Streams that `tracker.tail.publishing.tail_publish` appends to once
Elasticsearch has accepted a batch: `tail:<user_id>` per user and `tail:all` for admins, each
capped at about settings.TAIL_STREAM_MAXLEN (TAIL_ADMIN_STREAM_MAXLEN) entries. That cap is the
window a client can resume in: an event's `id` is its stream entry id, and a client that comes
back with `Last-Event-ID` gets every matching entry after it, in order, none twice. When entries
after its position have been trimmed away (or the position is not from this stream), the stream
says so with a `reset` event and carries on from the newest entry; the client reloads by search.

Elasticsearch stays the record: an event is only a notification, and it is sent no earlier than
TRACKER_REFRESH_INTERVAL (plus a small margin) after its entry was added, by when the periodic
refresh has made the document searchable. Waiting is cheaper than asking Elasticsearch about
every event on every open stream, and it costs at most one refresh interval of latency, which a
search has to wait for anyway.

Events on the wire (text/event-stream):

- a message: `id: <entry id>` and `data: <the document as JSON>`;
- `event: live`: the backlog is delivered and new messages follow as they are tracked;
- `event: reset`: the position asked for is outside the window;
- `event: position`: the position has moved past messages that did not match (sent with the
  keep-alive, so a resuming client need not re-read them);
- `: keep-alive`, a comment, after TAIL_KEEPALIVE_SECONDS without anything else;
- `event: end`, last, with a `reason`: `expired` (the credential's time is up) or `revoked`.

The credential that opened a stream is checked when it opens, then again every
TAIL_KEEPALIVE_SECONDS but at least every _CHECK_SECONDS by the process's one watcher
(tracker.tail.watch), for every open stream in one round trip: a JWT that is logged out, its
family revoked or its user removed, or an API key deleted, expired or left without its owner,
ends the stream at the next check.

Browsers' EventSource cannot send a header, so `tail_ticket_issue` (tickets.py) hands out a
single-use ticket for the query string instead of the token.

The stream itself runs on the ASGI server (`TailStream` is an async iterator): one Redis
connection per open stream, blocked in XREAD, and closed as soon as the client goes away.
"""

import asyncio
import json
import logging
import os
import re
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio
import redis.asyncio.cluster
import redis.exceptions
from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import (
    APIException,
)

from core.redis import cluster_seed_nodes, store
from tracker.tail.tickets import TailCredential, TailFilters
from tracker.tail.watch import CredentialWatch, credential_revoked, watched

logger = logging.getLogger(__name__)

POSITION_INVALID = "Last-Event-ID must be a position from this stream, such as 1700000000000-0."
RESET_DETAIL = (
    "Messages after this position have left the live tail's window (or the position is not from "
    "this stream); load them by search. The stream goes on from the newest message."
)
# A stream id: milliseconds, a dash, a sequence number. 0-0 is "before the first entry".
# ASCII digits only: \d also matches other scripts' digits (Arabic-Indic...), which XREAD refuses.
_POSITION = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
# Each part is an unsigned 64-bit integer in Redis: XREAD refuses a larger one, and by then
# the stream has already answered 200.
_POSITION_PART_MAX = 2**64 - 1
ORIGIN = "0-0"
# Why a stream ended, in its last event.
END_EXPIRED = "expired"
END_REVOKED = "revoked"
# The longest an open stream goes without its credential being checked, whatever the traffic,
# so a busy stream (that never sends a keep-alive) is checked as often as a quiet one. A
# shorter keep-alive checks at each one.
_CHECK_SECONDS = 5.0
# Entries per XREAD: a resuming client catches up in batches this size.
_READ_COUNT = 500
# Each stream's Redis connection carries this name plus the process id (CLIENT LIST shows them);
# the credential watcher's, WATCH_CLIENT_NAME_PREFIX's.
CLIENT_NAME_PREFIX = "logger-tail-"
WATCH_CLIENT_NAME_PREFIX = "logger-tail-watch-"
_LINE_END = re.compile(r"\r\n|\r|\n")  # SSE's three, and no others (not str.splitlines')
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class TailNotServedHere(APIException):
    """The tail was asked of the WSGI server, where an open stream would pin a sync worker."""

    status_code = status.HTTP_404_NOT_FOUND
    default_detail = (
        "The live tail is served by the tail process (uvicorn on config.asgi), not here: "
        "route /api/tracker/messages/tail/ to it."
    )
    default_code = "tail_not_served_here"


def position_valid(value: str) -> bool:
    """Whether `value` has the shape of a stream position, with parts Redis can hold."""
    if not _POSITION.fullmatch(value):
        return False
    return all(int(part) <= _POSITION_PART_MAX for part in value.split("-"))


def _order(position: str) -> tuple[int, int]:
    milliseconds, _, sequence = position.partition("-")
    return int(milliseconds), int(sequence)


def searchable_delay() -> float:
    """Seconds after an entry was added by when its document is searchable."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", settings.TRACKER_REFRESH_INTERVAL)
    # "-1" turns refreshes off: then nothing is searchable before someone refreshes by hand,
    # and waiting would not help; the events go out at once.
    interval = float(match[1]) * _UNITS[match[2]] if match else 0.0
    return interval + settings.TAIL_SEARCHABLE_MARGIN_SECONDS


# --- The stream ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TailStart:
    """Where a stream starts, and whether the position asked for was outside the window."""

    position: str
    reset: bool = False


def _window_lost(position: str, info: Mapping[str, Any] | None) -> bool:
    """Whether entries after `position` may be missing from the stream described by `info`.

    Trimming deletes the oldest entries (Redis 7.0 does not count those in
    max-deleted-entry-id), so entries may be missing exactly when `position` is older than the
    oldest entry left, unless nothing was ever deleted. A position that was the last entry
    trimmed is reset too: that cannot be told apart from one further back.
    """
    if info is None:  # no stream (yet, or any more): only "before the start" is safe
        return position != ORIGIN
    newest = _order(info["last-generated-id"])
    if _order(position) >= newest:
        return _order(position) > newest  # beyond the newest: a position not from this stream
    if info.get("entries-added") == info.get("length"):
        return False  # Redis >= 7 counts what was added: nothing was ever deleted
    first = info.get("first-entry")
    return first is None or _order(first[0]) > _order(position)


def _stream_info_sync(stream: str) -> dict[str, Any] | None:
    try:
        return store().xinfo_stream(stream)
    except redis.exceptions.ResponseError:  # no such key
        return None


def tail_start(*, filters: TailFilters, last_event_id: str | None) -> TailStart:
    """Where a new stream begins: after `last_event_id`, or at the newest entry.

    Runs before the response starts, so that Redis being down is a 503, not a broken stream.
    """
    info = _stream_info_sync(filters.stream)
    newest = info["last-generated-id"] if info else ORIGIN
    if last_event_id is None:
        return TailStart(position=newest)
    if _window_lost(last_event_id, info):
        return TailStart(position=newest, reset=True)
    return TailStart(position=last_event_id)


def _event(name: str | None, position: str | None, data: str) -> bytes:
    lines = [f"event: {name}"] if name else []
    if position is not None:
        lines.append(f"id: {position}")
    # JSON as json.dumps writes it holds no line break, but a stored document might have been
    # written otherwise: each of SSE's line ends starts a `data:` line of its own.
    lines.extend(f"data: {line}" for line in _LINE_END.split(data))
    return ("\n".join(lines) + "\n\n").encode()


def _control(name: str, position: str, **extra: str) -> bytes:
    return _event(name, position, json.dumps({"position": position, **extra}))


KEEPALIVE = b": keep-alive\n\n"


def _stream_client(name_prefix: str = CLIENT_NAME_PREFIX) -> redis.asyncio.Redis:
    """A connection of this stream's own: it sits in XREAD BLOCK most of the time."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "client_name": f"{name_prefix}{os.getpid()}",
        "socket_connect_timeout": 2,
        # Longer than the longest XREAD BLOCK (one keep-alive interval).
        "socket_timeout": settings.TAIL_KEEPALIVE_SECONDS + 10,
    }
    if settings.REDIS_CLUSTER_NODES:  # the store is a Redis Cluster (core.redis.store)
        seeds = cluster_seed_nodes(settings.REDIS_CLUSTER_NODES)
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in seeds]
        # Typed as the plain client: the stream uses only commands both answer alike.
        return cast(redis.asyncio.Redis, redis.asyncio.RedisCluster(startup_nodes=nodes, **options))
    return redis.asyncio.Redis.from_url(settings.CACHES["store"]["LOCATION"], **options)


def _check_every() -> float:
    return min(settings.TAIL_KEEPALIVE_SECONDS, _CHECK_SECONDS)


# One watcher per event loop (the tail process has one; a test may run several in turn).
_WATCHES: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CredentialWatch]" = (
    weakref.WeakKeyDictionary()
)


def _credential_watch() -> CredentialWatch:
    loop = asyncio.get_running_loop()
    if loop not in _WATCHES:
        _WATCHES[loop] = CredentialWatch(
            lambda: _stream_client(WATCH_CLIENT_NAME_PREFIX), _check_every
        )
    return _WATCHES[loop]


async def _stream_info(client: redis.asyncio.Redis, stream: str) -> dict[str, Any] | None:
    try:
        return await client.xinfo_stream(stream)
    except redis.exceptions.ResponseError:
        return None


def _cancel_if_asked() -> None:
    """Raise CancelledError if this task was asked to stop, even if an await swallowed it.

    redis-py's asyncio client (8.1) now and then swallows a cancellation that lands inside a
    command (about one in ten when the client goes away during the first one); the request
    stays on the task, so the stream honours it here instead of streaming into the void.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _unless(read: Awaitable[Any], revoked: asyncio.Event) -> Any:
    """What `read` returns, or None as soon as `revoked` is set (the read is then cancelled)."""
    reading, waiting = asyncio.ensure_future(read), asyncio.ensure_future(revoked.wait())
    try:
        await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        if not reading.done():
            # Let the cancelled read drop its connection before the stream closes the client.
            reading.cancel()
            await asyncio.wait({reading}, timeout=1)
    if reading.cancelled() or not reading.done():
        return None
    if revoked.is_set():
        reading.exception()  # retrieved, so asyncio does not log it: the stream ends anyway
        return None
    return reading.result()


def _due(entry_id: str, delay: float) -> float:
    """Seconds until the document of `entry_id` is searchable (0 when it already is)."""
    # The entry id holds Redis's clock, compared here with this machine's: on one host, or
    # hosts kept in step by NTP, they agree to within the margin.
    return max(0.0, _order(entry_id)[0] / 1000 + delay - time.time())


class TailStream:
    """The events of one client's stream, from `start`, until it goes away or its credential
    runs out or is revoked.

    `credential` is what `tail_credential` returns for the request that opened it.

    Handed to StreamingHttpResponse, which iterates it on the ASGI server's event loop and calls
    `close()` when the response is over. The client closing the connection usually cancels the
    stream inside its XREAD, and the generator closes its Redis connection on the way out; but
    a cancellation that lands while Django is sending leaves the generator parked at a `yield`,
    where only the garbage collector would finish it. `close()` finishes it at once instead.
    """

    def __init__(
        self,
        *,
        filters: TailFilters,
        start: TailStart,
        credential: TailCredential | None = None,
    ) -> None:
        self.filters, self.start = filters, start
        self.credential = credential or TailCredential()
        self._events: AsyncGenerator[bytes, None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The events, as bytes ready for the wire."""
        self._events = self._run()
        return self._events

    def close(self) -> None:
        """Stop the stream and free its Redis connection (Django calls this from a thread)."""
        if self._loop is None or self._events is None:
            return  # never started: it holds nothing
        # aclose() runs the generator's `finally` on its own loop; closing a finished
        # generator does nothing.
        asyncio.run_coroutine_threadsafe(self._events.aclose(), self._loop)

    async def _run(self) -> AsyncGenerator[bytes, None]:
        filters, start, credential = self.filters, self.start, self.credential
        self._loop = asyncio.get_running_loop()
        client = _stream_client()
        stream, delay = filters.stream, searchable_delay()
        keepalive, expires = settings.TAIL_KEEPALIVE_SECONDS, credential.expires
        # `sent`: the position the client holds (its Last-Event-ID), so far as this stream knows.
        position, sent, live = start.position, start.position, False
        quiet_since = time.monotonic()
        watch, revoked = _credential_watch(), None
        try:
            if start.reset:
                yield _control("reset", position, detail=RESET_DETAIL)
            if watched(credential):
                # The first check at once (a ticket's token may have been revoked since it was
                # issued); the watcher checks from then on.
                revoked_already = await credential_revoked(client, credential)
                _cancel_if_asked()
                revoked = watch.watch(credential)
                if revoked_already:
                    revoked.set()
            while True:
                if expires is not None and time.time() >= expires:
                    ending = END_EXPIRED
                    break
                if revoked is not None and revoked.is_set():
                    ending = END_REVOKED
                    break
                wait = keepalive - (time.monotonic() - quiet_since)
                if live and wait <= 0:
                    if sent != position:
                        yield _control("position", position)
                        sent = position
                    yield KEEPALIVE
                    quiet_since = time.monotonic()
                    continue
                # Catching up, read what is there; once live, wait for more, but never longer than
                # the keep-alive or the credential allow, and not once it is revoked.
                if expires is not None:
                    wait = min(wait, expires - time.time())
                block = max(1, int(wait * 1000)) if live else None
                read = client.xread({stream: position}, count=_READ_COUNT, block=block)
                # RESP2's [[stream, [(entry id, fields), ...]]], decoded; redis-py's annotations
                # also allow RESP3's dict, which this client does not speak.
                reply = cast(
                    list[list[Any]] | None,
                    await _unless(read, revoked) if live and revoked else await read,
                )
                _cancel_if_asked()
                entries: list[tuple[str, dict[str, str]]] = reply[0][1] if reply else []
                if entries:
                    # Read first, then ask what was trimmed: an entry trimmed before the read shows
                    # up here, so a gap is never missed (at worst a reset comes one entry early).
                    info = await _stream_info(client, stream)
                    _cancel_if_asked()
                    if _window_lost(position, info):
                        position = info["last-generated-id"] if info else ORIGIN
                        yield _control("reset", position, detail=RESET_DETAIL)
                        sent, quiet_since = position, time.monotonic()
                        continue
                chunk: list[bytes] = []
                for entry_id, fields in entries:
                    pause = _due(entry_id, delay)
                    if pause:
                        # Send what is ready before waiting for the rest to become searchable.
                        if chunk:
                            yield b"".join(chunk)
                            chunk, quiet_since = [], time.monotonic()
                        await asyncio.sleep(pause)
                    data = fields.get("data", "{}")
                    if filters.matches(json.loads(data)):
                        chunk.append(_event(None, entry_id, data))
                        sent = entry_id
                    position = entry_id
                if chunk:
                    yield b"".join(chunk)
                    quiet_since = time.monotonic()
                if not live and len(entries) < _READ_COUNT:
                    live = True
                    yield _control("live", position)
                    sent, quiet_since = position, time.monotonic()
            # Said, so that a client can tell this from a dropped connection and stop; `id` is
            # where it resumes once it holds a new credential.
            yield _control("end", position, reason=ending)
        except redis.exceptions.RedisError as exc:
            # The client reconnects with its Last-Event-ID and loses nothing.
            logger.warning("Live tail stream on %s ended: Redis failed: %s", stream, exc)
        finally:
            if revoked is not None:
                watch.unwatch(revoked)
            await client.aclose()
