"""The syslog listener: TCP and UDP in, a bounded queue, batches into the push pipeline.

One asyncio process (`manage.py syslog_listen`) reads frames and datagrams into a queue of at
most SYSLOG_QUEUE_SIZE messages. One consumer takes them in batches (SYSLOG_BATCH_SIZE, or
whatever came within SYSLOG_BATCH_MS) and, in a worker thread, hands each batch to the batch
push (`messages_push_batch`), as the key owner: counted, a random number, the validator, the
tracker, the same per-user rate limit. Nothing bypasses the validator.

TCP frames are detected one by one: a frame that starts with a digit is octet-counted
(RFC 6587's `MSG-LEN SP SYSLOG-MSG`), anything else ends at LF. When the queue is full a TCP
connection waits to put its frame, so it stops reading and the sender's socket fills up: back
pressure. So does a rate-limited batch (429): its TCP lines are pushed again after the wait. A
UDP datagram that finds the queue full is dropped and counted, and so are a rate-limited
batch's UDP lines. Memory stays bounded: the queue, one batch, one frame per connection.

A line that cannot be read goes to the `syslog` inbox's dead letter with the error; the
connection and the lines after it go on. Counters live in Redis (`/metrics` is served by web).
"""

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from django.conf import settings

from accounts.selectors import user_get
from accounts.services import api_key_verify
from core.contract import date_format
from core.metrics import counter_register, metrics_incr
from core.queue import inbox_for_user
from pusher.exceptions import IngestionThrottled
from pusher.services import BatchItem, messages_push_batch
from pusher.syslog import line_item

logger = logging.getLogger(__name__)

SYSLOG_INBOX = "syslog"
# The key owner is looked up again at most this often, so a deleted key stops the listener.
KEY_RECHECK_SECONDS = 5.0
# While Redis is away, a batch is tried again after this long (its TCP senders wait).
RETRY_SECONDS = 1.0
# On SIGTERM, what is queued still goes in, for at most this long.
STOP_GRACE_SECONDS = 5.0
# An octet count has at most this many digits (RFC 6587: a nonzero digit, then more).
COUNT_DIGITS_MAX = 9

KEY_MISSING = (
    "SYSLOG_API_KEY is not set: the syslog listener does not start. Create an API key with "
    "scope push (POST /api/auth/keys/) and set SYSLOG_API_KEY to it; its owner owns the lines."
)
KEY_INVALID = (
    "SYSLOG_API_KEY is not a valid API key (unknown, deleted or expired, or its user is gone): "
    "the syslog listener does not start."
)
KEY_NOT_PUSH = "SYSLOG_API_KEY has no push scope: the syslog listener does not start."
KEY_GONE = "SYSLOG_API_KEY was revoked or lost its push scope: the syslog listener stops."

# Counters in the pipeline's metrics hash (core.metrics), one field each.
_RECEIVED = {"tcp": "syslog_received_tcp", "udp": "syslog_received_udp"}
_DROPPED = {"queue_full": "syslog_udp_dropped_full", "throttled": "syslog_udp_dropped_throttled"}
_WAITED = {"queue_full": "syslog_tcp_waited_full", "throttled": "syslog_tcp_waited_throttled"}
_HANDED = {"queued": "syslog_queued", "dead_lettered": "syslog_dead_lettered"}


def syslog_metrics_register() -> None:
    """Describe the listener's counters to `/metrics` (from PusherConfig.ready)."""
    counter_register(
        "logger_syslog_received", "Syslog messages read, by transport.", "transport", _RECEIVED
    )
    counter_register(
        "logger_syslog_messages",
        "Syslog messages handed on: queued for the validator, or dead-lettered.",
        "outcome",
        _HANDED,
    )
    counter_register(
        "logger_syslog_udp_dropped",
        "Syslog datagrams dropped: the listener's queue was full, or the key's rate was used up.",
        "reason",
        _DROPPED,
    )
    counter_register(
        "logger_syslog_tcp_backpressure",
        "Times TCP reading waited: a connection for room in the queue, or a batch for the rate.",
        "reason",
        _WAITED,
    )


class SyslogKeyRefused(Exception):
    """SYSLOG_API_KEY cannot own syslog lines; the text says why."""


def syslog_key_owner(*, key: str) -> str:
    """The user id owning SYSLOG_API_KEY's lines; SyslogKeyRefused when there is none."""
    if not key:
        raise SyslogKeyRefused(KEY_MISSING)
    record = api_key_verify(key=key.strip())
    if record is None or user_get(user_id=record["user_id"]) is None:
        raise SyslogKeyRefused(KEY_INVALID)
    if "push" not in record["scopes"].split(","):
        raise SyslogKeyRefused(KEY_NOT_PUSH)
    return record["user_id"]


@dataclass(frozen=True)
class Line:
    """One received message: its bytes, how it came, when, and whether it was cut."""

    raw: bytes
    transport: str  # "tcp" or "udp"
    received: datetime
    cut: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


# --- Parsing and handing on (worker threads; the drain of replays uses it too) --------------
def _dead_item(line: Line, user_id: str) -> dict[str, Any]:
    """What the dead letter keeps of a line: enough to read it again on a replay."""
    return {
        "line": line.raw.decode("utf-8", errors="replace"),
        "user_id": user_id,
        "transport": line.transport,
        "received": date_format(line.received),
    }


def lines_parse(*, user_id: str, lines: list[Line]) -> tuple[list[BatchItem], list[Line]]:
    """Read each line: the items to push (with their lines), dead-lettering the others."""
    items, kept, dead = [], [], []
    for line in lines:
        item = line_item(line.raw, received=line.received)
        if item.errors:
            dead.append((_dead_item(line, user_id), item.errors))
            continue
        if line.cut:
            item.extra["truncated"] = True
        items.append(item)
        kept.append(line)
    if dead:
        inbox_for_user(SYSLOG_INBOX, user_id).dead_append(dead, at=date_format(_now()))
        logger.warning(
            "syslog: %d line(s) dead-lettered; first: %s",
            len(dead),
            dead[0][1][0][:300],
            extra={"user_id": user_id},
        )
    return items, kept


def lines_push(*, user_id: str, items: list[BatchItem], lines: list[Line]) -> Counter[str]:
    """Push parsed lines as one batch; raises IngestionThrottled with nothing counted."""
    report = messages_push_batch(
        user_id=user_id, items=items, request_id=f"syslog-{uuid.uuid4().hex[:16]}"
    )
    refused = [
        (_dead_item(lines[result["index"]], user_id), result["errors"])
        for result in report["items"]
        if result["status"] == "rejected"
    ]
    if refused:  # the parser checks what the batch push does; kept in case they ever differ
        inbox_for_user(SYSLOG_INBOX, user_id).dead_append(refused, at=date_format(_now()))
    return Counter(queued=report["accepted"], dead_lettered=len(refused))


# --- Framing ----------------------------------------------------------------------------------
async def _line_rest(reader: asyncio.StreamReader, max_bytes: int) -> tuple[bytes, bool]:
    """The bytes up to the next LF (not kept) or the end, cut at max_bytes; and if cut."""
    kept = b""
    cut = False
    while True:
        try:
            chunk = await reader.readuntil(b"\n")
            done = True
        except asyncio.IncompleteReadError as exc:  # the connection ended mid-line
            chunk, done = exc.partial, True
        except asyncio.LimitOverrunError as exc:
            # Longer than the stream's buffer: take what is there and look further.
            chunk, done = await reader.readexactly(exc.consumed), False
        room = max_bytes - len(kept)
        if len(chunk.rstrip(b"\n")) > room:
            cut = True
        kept += chunk[: max(room, 0)]
        if done:
            return kept.rstrip(b"\n"), cut


async def _skip(reader: asyncio.StreamReader, count: int) -> None:
    """Read and forget `count` bytes (the part of an octet-counted frame past the maximum)."""
    while count > 0:
        chunk = await reader.read(min(count, 65536))
        if not chunk:
            return
        count -= len(chunk)


async def tcp_frames(
    reader: asyncio.StreamReader, max_bytes: int
) -> AsyncIterator[tuple[bytes, bool]]:
    """Each frame of a TCP stream as (bytes, cut), its framing detected frame by frame."""
    while True:
        first = await reader.read(1)
        if not first:
            return
        if not first.isdigit() or first == b"0":
            rest, cut = await _line_rest(reader, max_bytes - 1)
            frame = first + rest
        else:
            digits, char = first, b""
            while len(digits) <= COUNT_DIGITS_MAX:
                char = await reader.read(1)
                if not char.isdigit():
                    break
                digits, char = digits + char, b""
            if char == b" ":
                size = int(digits)
                try:
                    frame = await reader.readexactly(min(size, max_bytes))
                except asyncio.IncompleteReadError as exc:
                    frame = exc.partial  # the connection ended mid-frame: keep what came
                cut = size > max_bytes
                await _skip(reader, size - len(frame) if cut else 0)
            elif char in (b"\n", b""):
                frame, cut = digits, False  # a line of digits, or the end of the stream
            else:
                # Digits not followed by a space: not a count, so a line after all.
                head = digits + char
                rest, cut = await _line_rest(reader, max_bytes - len(head))
                frame = head + rest
        if frame.strip(b"\r\n\x00 "):  # blank lines between frames are no messages
            yield frame, cut


# --- The process ------------------------------------------------------------------------------
class _Datagrams(asyncio.DatagramProtocol):
    """UDP: one datagram, one message; dropped and counted when the queue is full."""

    def __init__(self, listener: "SyslogListener") -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """Queue the datagram, or count it dropped: UDP has no way to wait."""
        listener = self.listener
        listener.counts[_RECEIVED["udp"]] += 1
        line = Line(data[: listener.max_bytes], "udp", _now(), len(data) > listener.max_bytes)
        try:
            listener.queue.put_nowait(line)
        except asyncio.QueueFull:
            listener.counts[_DROPPED["queue_full"]] += 1


class SyslogListener:
    """Serves TCP and UDP on one address and hands the lines to the pipeline as `user_id`."""

    def __init__(self, *, host: str, port: int, key: str, user_id: str) -> None:
        self.host, self.port, self.key, self.user_id = host, port, key, user_id
        self.max_bytes = settings.SYSLOG_MAX_MESSAGE_BYTES
        self.batch_size = max(1, min(settings.SYSLOG_BATCH_SIZE, settings.INGEST_BURST))
        self.batch_seconds = settings.SYSLOG_BATCH_MS / 1000
        self.queue: asyncio.Queue[Line] = asyncio.Queue(maxsize=settings.SYSLOG_QUEUE_SIZE)
        self.counts: Counter[str] = Counter()
        self._key_checked = 0.0

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async for frame, cut in tcp_frames(reader, self.max_bytes):
                self.counts[_RECEIVED["tcp"]] += 1
                if self.queue.full():
                    self.counts[_WAITED["queue_full"]] += 1
                # Waits while the queue is full: this connection reads nothing meanwhile.
                await self.queue.put(Line(frame, "tcp", _now(), cut))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the sender went away; what it sent before is queued
        finally:
            writer.close()

    async def _batch(self) -> list[Line]:
        """The next batch: waits for one line, then takes more for at most batch_seconds."""
        loop = asyncio.get_running_loop()
        batch = [await self.queue.get()]
        deadline = loop.time() + self.batch_seconds
        while len(batch) < self.batch_size:
            try:
                batch.append(self.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    def _key_recheck(self) -> None:
        """Raise SyslogKeyRefused once the key is revoked; looked up every few seconds."""
        if time.monotonic() - self._key_checked < KEY_RECHECK_SECONDS:
            return
        try:
            owner = syslog_key_owner(key=self.key)
        except SyslogKeyRefused as exc:
            raise SyslogKeyRefused(KEY_GONE) from exc
        if owner != self.user_id:
            raise SyslogKeyRefused(KEY_GONE)
        self._key_checked = time.monotonic()

    async def _retrying(self, call: Callable[..., Any], **kwargs: Any) -> Any:
        """Run `call` in a thread until Redis answers (TCP senders wait meanwhile)."""
        while True:
            try:
                return await asyncio.to_thread(call, **kwargs)
            except redis.exceptions.RedisError as exc:
                logger.warning("syslog: Redis unavailable (%s); retry in %ss", exc, RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)

    async def _hand_on(self, batch: list[Line]) -> None:
        """Parse, dead-letter and push one batch; wait out a 429 for its TCP lines."""
        await self._retrying(self._key_recheck)
        items, lines = await self._retrying(lines_parse, user_id=self.user_id, lines=batch)
        self.counts[_HANDED["dead_lettered"]] += len(batch) - len(lines)
        while items:
            try:
                handed = await self._retrying(
                    lines_push, user_id=self.user_id, items=items, lines=lines
                )
            except IngestionThrottled as exc:
                tcp = [n for n, line in enumerate(lines) if line.transport == "tcp"]
                self.counts[_DROPPED["throttled"]] += len(lines) - len(tcp)
                self.counts[_WAITED["throttled"]] += 1 if tcp else 0
                items, lines = [items[n] for n in tcp], [lines[n] for n in tcp]
                if items:
                    await asyncio.sleep(float(exc.wait or 1))
                continue
            for outcome, amount in handed.items():
                self.counts[_HANDED[outcome]] += amount
            return

    async def _consume(self) -> None:
        while True:
            batch = await self._batch()
            try:
                await self._hand_on(batch)
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def _flush_counts(self) -> None:
        """Add the counters to Redis every second (and once more on the way out)."""
        while True:
            await asyncio.sleep(1.0)
            await self._counts_write()

    async def _counts_write(self) -> None:
        counts, self.counts = self.counts, Counter()
        if not counts:
            return
        try:
            await asyncio.to_thread(metrics_incr, **counts)
        except redis.exceptions.RedisError:
            self.counts.update(counts)  # kept for the next try

    async def serve(self, *, ready: Callable[[], None] | None = None) -> None:
        """Listen until SIGTERM or SIGINT, or until the key is revoked (SyslogKeyRefused)."""
        loop = asyncio.get_running_loop()
        self._key_checked = time.monotonic()  # the command checked it just before
        stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        server = await asyncio.start_server(
            self._connection, self.host, self.port, limit=self.max_bytes + 64
        )
        udp, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=(self.host, self.port)
        )
        consumer = asyncio.create_task(self._consume())
        flusher = asyncio.create_task(self._flush_counts())
        logger.info(
            "syslog listener on %s:%s (TCP and UDP), lines owned by user %s",
            self.host,
            self.port,
            self.user_id,
        )
        if ready is not None:
            ready()
        stop = asyncio.create_task(stopping.wait())
        try:
            await asyncio.wait({consumer, stop}, return_when=asyncio.FIRST_COMPLETED)
            if consumer.done():
                consumer.result()  # raises what stopped it (SyslogKeyRefused)
            server.close()
            udp.close()
            # What was already queued still goes in, for a few seconds.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), STOP_GRACE_SECONDS)
        finally:
            for task in (consumer, flusher, stop):
                task.cancel()
            server.close()
            udp.close()
            with contextlib.suppress(Exception):
                await self._counts_write()
            logger.info("syslog listener stopped")
