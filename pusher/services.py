"""The push: count the request, draw a number, and hand the message to the validator."""

import hashlib
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import redis.exceptions
from django.conf import settings

from accounts.authentication import UncheckedClaims
from accounts.exceptions import TokenRevoked
from accounts.selectors import request_counter_key, user_tag
from core.contract import date_format
from core.queue import Inbox, inbox_for
from core.randomness import random_number
from core.redis import StoreScript, store
from pusher.exceptions import (
    BatchOverBurst,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    IngestionThrottled,
)

logger = logging.getLogger(__name__)

IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
# The validator's inbox, by name: the pusher hands work on the way a separate service would.
VALIDATOR_INBOX = "validator"

# The per-user token bucket, over messages (not requests), shared by every route in. Returns 0
# and takes `cost` tokens, or the whole seconds to wait and takes nothing.
_TAKE_TOKENS = """
local function take_tokens(bucket, rate, burst, cost)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  -- One string "tokens at": a GET and a SET EX, cheaper than a hash and its EXPIRE.
  local tokens, at = burst, now
  local state = redis.call('GET', bucket)
  if state then
    local space = string.find(state, ' ', 1, true)
    tokens, at = tonumber(string.sub(state, 1, space - 1)), tonumber(string.sub(state, space + 1))
  end
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < cost then return math.max(1, math.ceil((cost - tokens) / rate)) end
  local left = string.format('%.3f %.6f', tokens - cost, now)
  redis.call('SET', bucket, left, 'EX', math.ceil(burst / rate) + 1)
  return 0
end
"""
# The push is two steps, because Redis Cluster runs a script only on keys of one slot: the
# user's step (this script, on the user's keys) and the queue step (`_queue`, on the validator
# shard's). Atomically, this one refuses a revoked token; answers a stored Idempotency-Key;
# refuses a user over their rate; or counts the push (INCR). With an Idempotency-Key it also
# stores the message as "pending" (fingerprint, count, response, payload) and marks the key in
# flight: if the request dies before the queue step, a retry finds the pending record and
# queues the very same message (`_queue_keyed`).
# KEYS: counter, rate bucket, then the token's three revocation keys (its own, its family's,
# its user's) when the caller is a token, then the Idempotency-Key's record and in-flight
# marker when it has one. No placeholder keys: Redis Cluster would hash them to other slots.
# ARGV: rate per second, burst, idempotency TTL, flight TTL, body fingerprint, response JSON,
# payload JSON (the last three "" without a key), "1" if the caller is a token.
# Returns {count or seconds to wait, stored record or false, state}.
_PUSH = (
    _TAKE_TOKENS
    + """
local token = ARGV[8] == '1'
if token and redis.call('EXISTS', KEYS[3], KEYS[4], KEYS[5]) > 0 then return {0, false, 1} end
local stored, flight = KEYS[token and 6 or 3], KEYS[token and 7 or 4]
if stored then
  local previous = redis.call('GET', stored)
  if previous then
    if redis.call('EXISTS', flight) == 1 then return {0, previous, 2} end
    -- Pending (four lines) with this same body: its first request died before queueing it,
    -- or before saying so. This request queues it, and is in flight meanwhile.
    local mine = string.sub(previous, 1, #ARGV[5] + 1) == ARGV[5] .. '\\n'
    if mine and select(2, string.gsub(previous, '\\n', '')) == 3 then
      redis.call('SET', flight, '1', 'EX', tonumber(ARGV[4]))
      return {0, previous, 5}
    end
    return {0, previous, 0}
  end
end
local wait = take_tokens(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
if wait > 0 then return {wait, false, 3} end
local count = redis.call('INCR', KEYS[1])
if stored then
  local pending = ARGV[5] .. '\\n' .. count .. '\\n' .. ARGV[6] .. '\\n' .. ARGV[7]
  redis.call('SET', stored, pending, 'EX', tonumber(ARGV[3]))
  redis.call('SET', flight, '1', 'EX', tonumber(ARGV[4]))
end
return {count, false, 4}
"""
)
# The states the script returns; 0 is a stored answer to replay.
_REVOKED, _IN_FLIGHT, _THROTTLED, _COUNTED, _PENDING = 1, 2, 3, 4, 5
# How long a key counts as in flight if its request died before saying it had finished.
IDEMPOTENCY_FLIGHT_TTL_SECONDS = 10

_push_script = StoreScript(_PUSH)


def _caller_keys(user_id: str, token: UncheckedClaims | None) -> list[str]:
    """The keys both push scripts start with: the user's counter and rate bucket, then the
    token's three revocation keys when the caller is a token."""
    keys = [request_counter_key(user_id=user_id), _bucket_key(user_id)]
    return keys + token.revocation_keys if token is not None else keys


def _bucket_key(user_id: str) -> str:
    return f"pusher:bucket:{user_tag(user_id)}"


def _rate() -> tuple[float, int]:
    """The per-user ingestion rate (messages a second) and burst, from settings."""
    return settings.INGEST_RATE_PER_SECOND, settings.INGEST_BURST


def _idempotency_keys(user_id: str, key: str | None) -> tuple[str, str]:
    """The Redis keys of an Idempotency-Key's stored response and in-flight marker."""
    if not key:
        return "", ""
    digest = hashlib.sha256(key.encode()).hexdigest()
    stored = f"pusher:idem:{user_tag(user_id)}:{digest}"
    return stored, f"{stored}:flight"


def _payload(
    *, user_id: str, user_message: str, request_id: str, message_id: str | None = None
) -> dict[str, Any]:
    """A message as the pusher hands it to the validator (request_count is added once counted)."""
    return {
        "message_id": message_id or str(uuid.uuid4()),
        "user_id": user_id,
        "user_message": user_message,
        "random_number": random_number(attempt=1),
        "created_time": date_format(datetime.now(UTC)),
        "request_id": request_id,
    }


def _counted(encoded: str, count: int | str) -> str:
    """A JSON object (from json.dumps, so ending in "}") with its request_count added.

    Spliced before the closing brace, which is cheaper than decoding and encoding it again.
    """
    return f'{encoded[:-1]},"request_count":{count}}}'


def _fingerprint(user_message: str) -> str:
    """What makes two pushes "the same request" for an Idempotency-Key: the message."""
    return hashlib.sha256(user_message.encode()).hexdigest()


@dataclass(frozen=True)
class _Stored:
    """An Idempotency-Key's record: the response, and the message while it may not be queued.

    Two lines once queued ("fingerprint", "response"); four while pending ("fingerprint",
    "count", "response", "payload", the last two without their request_count).
    """

    fingerprint: str
    response: str
    payload: str | None = None

    @classmethod
    def parse(cls, record: str) -> Self:
        """Read a record as the push script stores it, or as `_key_release` rewrites it."""
        lines = record.split("\n")
        if len(lines) == 2:
            return cls(fingerprint=lines[0], response=lines[1])
        fingerprint, count, response, payload = lines
        return cls(fingerprint, _counted(response, count), _counted(payload, count))


def _replay(stored: _Stored, *, fingerprint: str, in_flight: bool) -> str:
    """The stored response of an Idempotency-Key's first request, if this one may have it."""
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if in_flight:
        raise IdempotencyKeyInFlight()
    return stored.response


def _queue(box: Inbox, encoded: list[str]) -> None:
    """The push's queue step: put messages in the validator's shard, count them, wake it."""
    if box.append_encoded(encoded, count_as="pushes"):
        _wake(box)


def _wake(box: Inbox) -> None:
    """Wake the validator's drain; if that fails, the message is queued all the same."""
    try:
        box.wake()
    except redis.exceptions.RedisError as exc:
        # The push is counted and queued, so the answer stays 202: the every-minute wake
        # schedule starts the drain. A 503 here would make a client push it twice.
        logger.warning("push queued, but waking the validator failed: %s", exc)


def _queue_keyed(box: Inbox, encoded: str, *, keys: tuple[str, str], record: str) -> None:
    """Queue an Idempotency-Key's message, then store `record` (fingerprint and response) as
    the key's answer, marked queued.

    If the queue step fails, the key is let go at once, so that the client's retry queues the
    pending message (the same message_id) without waiting out the in-flight marker.
    """
    stored_key, flight_key = keys
    try:
        _queue(box, [encoded])
    except redis.exceptions.RedisError:
        _key_release(flight_key)
        raise
    _key_release(flight_key, stored_key=stored_key, record=record)


def _key_release(flight_key: str, *, stored_key: str = "", record: str = "") -> None:
    """End an Idempotency-Key's request: store its queued `record` (the TTL kept), if given,
    and clear its in-flight marker, in one round trip."""
    try:
        # No MULTI needed: with only one of the two done, a repeat is told to wait (409) until
        # the marker expires, or queues the pending message again (the same message_id).
        pipe = store().pipeline(transaction=False)
        if stored_key:
            # XX: a record deleted meanwhile (its user removed) is not brought back, TTL-less.
            pipe.set(stored_key, record, keepttl=True, xx=True)
        pipe.delete(flight_key)
        pipe.execute()
    except redis.exceptions.RedisError as exc:
        # The marker expires by itself; until then a repeat is told to retry (409), and after
        # it, a record still pending is queued again by the repeat (the same message_id).
        logger.warning("could not end an Idempotency-Key's request: %s", exc)


def message_push(
    *,
    user_id: str,
    user_message: str,
    request_id: str,
    token: UncheckedClaims | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Accept one message for validation; return the response body (the first one on a replay).

    `token` is the caller's access token over HTTP (None for operators' commands). Its
    revocation is checked in the user's step (raising TokenRevoked), which saves the push a
    Redis round trip.
    """
    message = _payload(user_id=user_id, user_message=user_message, request_id=request_id)
    payload = json.dumps(message)
    answer = {"status": "queued", "message_id": message["message_id"], "user_id": user_id}
    # Only a keyed push stores its response (and payload) in the user's step.
    body = json.dumps(answer) if idempotency_key else ""
    # A user's pushes share a shard: the validator takes them in the order they were queued.
    validator_inbox: Inbox = inbox_for(VALIDATOR_INBOX, user_id)
    keys = _idempotency_keys(user_id, idempotency_key)
    fingerprint = _fingerprint(user_message) if idempotency_key else ""
    count, previous, state = _push_script(
        keys=[*_caller_keys(user_id, token), *(keys if idempotency_key else ())],
        args=[
            *_rate(),
            IDEMPOTENCY_TTL_SECONDS,
            IDEMPOTENCY_FLIGHT_TTL_SECONDS,
            fingerprint,
            body,
            payload if idempotency_key else "",
            int(token is not None),
        ],
    )
    if state == _REVOKED:
        raise TokenRevoked()
    if state == _THROTTLED:
        raise IngestionThrottled(wait=count)
    if state == _COUNTED:
        outcome, answer["request_count"] = "queued", count
        if idempotency_key:
            record = f"{fingerprint}\n{_counted(body, count)}"
            _queue_keyed(validator_inbox, _counted(payload, count), keys=keys, record=record)
        else:
            _queue(validator_inbox, [_counted(payload, count)])
    else:
        stored = _Stored.parse(previous)
        answer = json.loads(_replay(stored, fingerprint=fingerprint, in_flight=state == _IN_FLIGHT))
        outcome = "replayed"
        if state == _PENDING:
            # The first request died before marking its message queued: queue it now. If it
            # had been queued, the copy has the same message_id, and the tracker keeps one.
            outcome = "queued again"
            record = f"{fingerprint}\n{stored.response}"
            _queue_keyed(validator_inbox, stored.payload, keys=keys, record=record)
    logger.info(
        "push %s: message %s, request_count %s",
        outcome,
        answer["message_id"],
        answer["request_count"],
        extra={"user_id": user_id, "message_id": answer["message_id"]},
    )
    return answer


# A batch's user step, atomically: refuse a revoked token; mark each item whose client
# message_id was accepted in the last 24 h (or earlier in this batch) a duplicate; refuse the
# whole batch if the user's rate cannot cover its fresh messages; else give them consecutive
# counts (INCRBY once). The queue step follows, then the ids are remembered (`_seen_mark`):
# a batch whose request dies between the two is queued again by its retry, with the same
# client message_ids, and the tracker keeps one of each.
# KEYS: counter, rate bucket, then the token's three revocation keys when the caller is a
# token, then a "seen" key for each item whose client gave a message_id.
# ARGV: rate, burst, "1" if the caller is a token, then per item "1" if it has a seen key.
# Returns {state, seconds to wait, then per item its count, or 0 for a duplicate}.
_PUSH_BATCH = (
    _TAKE_TOKENS
    + """
local token = ARGV[3] == '1'
if token and redis.call('EXISTS', KEYS[3], KEYS[4], KEYS[5]) > 0 then return {1, 0} end
local next_key = token and 6 or 3
local duplicate, here, fresh = {}, {}, 0
for i = 4, #ARGV do
  local key = nil
  if ARGV[i] == '1' then key = KEYS[next_key]; next_key = next_key + 1 end
  if key and (here[key] or redis.call('EXISTS', key) == 1) then
    duplicate[i] = true
  else
    fresh = fresh + 1
    if key then here[key] = true end
  end
end
local out = {4, 0}
if fresh > 0 then
  local wait = take_tokens(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), fresh)
  if wait > 0 then return {3, wait} end
end
local count = redis.call('INCRBY', KEYS[1], fresh) - fresh
for i = 4, #ARGV do
  if duplicate[i] then
    out[#out + 1] = 0
  else
    count = count + 1
    out[#out + 1] = count
  end
end
return out
"""
)
_push_batch_script = StoreScript(_PUSH_BATCH)
# How long a client's message_id is remembered: a batch retried within it creates nothing twice.
SEEN_TTL_SECONDS = 24 * 60 * 60


def _seen_key(user_id: str, message_id: str) -> str:
    return f"pusher:seen:{user_tag(user_id)}:{message_id}"


def _seen_mark(keys: list[str]) -> None:
    """Remember a queued batch's client message_ids, so that a retry marks them duplicates."""
    if not keys:
        return
    try:
        pipe = store().pipeline(transaction=False)  # one slot, the user's; no need for MULTI
        for key in keys:
            pipe.set(key, "1", ex=SEEN_TTL_SECONDS)
        pipe.execute()
    except redis.exceptions.RedisError as exc:
        # The messages are queued, so the answer stays 202; a retry of this batch queues them
        # again, with the same message_ids, and the tracker keeps one of each.
        logger.warning("batch queued, but remembering its message ids failed: %s", exc)


@dataclass
class BatchItem:
    """One message of a batch: its text and the client's message_id, or why it is refused.

    Extra fields (severity, service, trace...) travel with the message to the document.
    """

    user_message: str | None = None
    message_id: str | None = None
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def messages_push_batch(
    *,
    user_id: str,
    items: list[BatchItem],
    request_id: str,
    token: UncheckedClaims | None = None,
) -> dict[str, Any]:
    """Accept a batch: one result per item, in order; the valid, new ones counted and queued.

    Results are `{index, message_id, request_count, status: "queued"}`, `{index, status:
    "rejected", errors}` or `{index, message_id, status: "duplicate"}`. Raises
    IngestionThrottled (nothing counted or queued) when the user's rate cannot cover it.
    """
    valid = [(index, item) for index, item in enumerate(items) if not item.errors]
    payloads = [
        {
            **_payload(
                user_id=user_id,
                user_message=item.user_message,
                request_id=request_id,
                message_id=item.message_id,
            ),
            **item.extra,
        }
        for _, item in valid
    ]
    rate, burst = _rate()
    if len(valid) > burst:
        raise BatchOverBurst()
    counts: list[int] = []
    if valid:
        seen = [_seen_key(user_id, item.message_id) if item.message_id else "" for _, item in valid]
        state, wait, *counts = _push_batch_script(
            keys=[*_caller_keys(user_id, token), *filter(None, seen)],
            args=[rate, burst, int(token is not None), *(int(bool(key)) for key in seen)],
        )
        if state == _REVOKED:
            raise TokenRevoked()
        if state == _THROTTLED:
            raise IngestionThrottled(wait=wait)
        fresh = [(payload, count) for payload, count in zip(payloads, counts, strict=True) if count]
        if fresh:
            _queue(
                inbox_for(VALIDATOR_INBOX, user_id),
                [_counted(json.dumps(payload), count) for payload, count in fresh],
            )
            _seen_mark([key for key, count in zip(seen, counts, strict=True) if key and count])
    results: list[dict[str, Any]] = [
        {"index": index, "status": "rejected", "errors": item.errors}
        for index, item in enumerate(items)
    ]
    for (index, _), payload, count in zip(valid, payloads, counts, strict=True):
        message_id = payload["message_id"]
        if count:
            results[index] = {
                "index": index,
                "message_id": message_id,
                "request_count": count,
                "status": "queued",
            }
        else:
            results[index] = {"index": index, "message_id": message_id, "status": "duplicate"}
    tally = Counter(result["status"] for result in results)
    logger.info(
        "batch push: %d queued, %d rejected, %d duplicate",
        tally["queued"],
        tally["rejected"],
        tally["duplicate"],
        extra={"user_id": user_id},
    )
    return {
        "accepted": tally["queued"],
        "rejected": tally["rejected"],
        "duplicates": tally["duplicate"],
        "items": results,
    }


def user_keys_delete(*, user_id: str) -> int:
    """Drop what the pusher keeps for a deleted user: idempotency records, seen ids, rate bucket.

    Registered with accounts' user removal (see PusherConfig.ready); a SCAN, so Redis is never
    blocked, however many records the user left.
    """
    client = store()
    keys = [_bucket_key(user_id)]
    for pattern in (f"pusher:idem:{user_tag(user_id)}:*", _seen_key(user_id, "*")):
        keys += client.scan_iter(match=pattern, count=1000)
    return client.delete(*keys)
