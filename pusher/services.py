"""The push: count the request, draw a number, and hand the message to the validator."""

import hashlib
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from django.conf import settings

from accounts.authentication import UncheckedClaims
from accounts.exceptions import TokenRevoked
from accounts.selectors import request_counter_key
from core.contract import date_format
from core.metrics import METRICS_KEY
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
# One round trip, atomically: refuse a revoked token; answer a stored Idempotency-Key; refuse
# a user over their rate; or count the push (INCR), put the message in the validator's inbox
# with its count, arm the inbox's drain, and remember the response under the key, marked in
# flight until the request finishes.
# KEYS: counter, inbox list, inbox armed flag, idempotency key ("" when none), metrics, the
# key's in-flight marker, the rate bucket, then the token's three revocation keys (its own, its
# family's, its user's; "" when the caller is no token).
# ARGV: payload JSON, armed TTL, idempotency TTL, response JSON, body fingerprint, flight TTL,
# rate per second, burst.
# Returns {count or seconds to wait, armed, stored "fingerprint\nresponse" or false, state}.
# The count is spliced into the two JSON objects (made by json.dumps, so they end in "}")
# before their closing brace, which is cheaper than cjson decoding and re-encoding them.
_PUSH = (
    _TAKE_TOKENS
    + """
if KEYS[8] ~= '' and redis.call('EXISTS', KEYS[8], KEYS[9], KEYS[10]) > 0 then
  return {0, 0, false, 1}
end
if KEYS[4] ~= '' then
  local previous = redis.call('GET', KEYS[4])
  if previous then
    if redis.call('EXISTS', KEYS[6]) == 1 then return {0, 0, previous, 2} end
    return {0, 0, previous, 0}
  end
end
local wait = take_tokens(KEYS[7], tonumber(ARGV[7]), tonumber(ARGV[8]), 1)
if wait > 0 then return {wait, 0, false, 3} end
local count = redis.call('INCR', KEYS[1])
redis.call('HINCRBY', KEYS[5], 'pushes', 1)
local counted = ',"request_count":' .. count .. '}'
redis.call('RPUSH', KEYS[2], string.sub(ARGV[1], 1, -2) .. counted)
local armed = redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[2]))
if KEYS[4] ~= '' then
  local stored = ARGV[5] .. '\\n' .. string.sub(ARGV[4], 1, -2) .. counted
  redis.call('SET', KEYS[4], stored, 'EX', tonumber(ARGV[3]))
  redis.call('SET', KEYS[6], '1', 'EX', tonumber(ARGV[6]))
end
return {count, armed and 1 or 0, false, 0}
"""
)
_REVOKED, _IN_FLIGHT, _THROTTLED = 1, 2, 3
# How long a key counts as in flight if its request died before saying it had finished.
IDEMPOTENCY_FLIGHT_TTL_SECONDS = 10

_push_script = StoreScript(_PUSH)


def _revocation_keys(token: UncheckedClaims | None) -> list[str]:
    """The three keys the push script checks with EXISTS ("" for a caller with no token)."""
    return token.revocation_keys if token is not None else ["", "", ""]


def _bucket_key(user_id: str) -> str:
    return f"pusher:bucket:{user_id}"


def _rate() -> tuple[float, int]:
    """The per-user ingestion rate (messages a second) and burst, from settings."""
    return settings.INGEST_RATE_PER_SECOND, settings.INGEST_BURST


def _idempotency_keys(user_id: str, key: str | None) -> tuple[str, str]:
    """The Redis keys of an Idempotency-Key's stored response and in-flight marker."""
    if not key:
        return "", ""
    digest = hashlib.sha256(key.encode()).hexdigest()
    stored = f"pusher:idem:{user_id}:{digest}"
    return stored, f"{stored}:flight"


def _payload(
    *, user_id: str, user_message: str, request_id: str, message_id: str | None = None
) -> dict[str, Any]:
    """A message as the pusher hands it to the validator (request_count is added in Redis)."""
    return {
        "message_id": message_id or str(uuid.uuid4()),
        "user_id": user_id,
        "user_message": user_message,
        "random_number": random_number(attempt=1),
        "created_time": date_format(datetime.now(UTC)),
        "request_id": request_id,
    }


def _fingerprint(user_message: str) -> str:
    """What makes two pushes "the same request" for an Idempotency-Key: the message."""
    return hashlib.sha256(user_message.encode()).hexdigest()


def _replay(previous: str, *, fingerprint: str, in_flight: bool) -> dict[str, Any]:
    """The stored response of an Idempotency-Key's first request, if this one may have it."""
    stored_fingerprint, _, response = previous.partition("\n")
    if stored_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if in_flight:
        raise IdempotencyKeyInFlight()
    return json.loads(response)


def _wake(box: Inbox) -> None:
    """Wake the validator's drain; if that fails, the message is queued all the same."""
    try:
        box.wake()
    except redis.exceptions.RedisError as exc:
        # The push is counted and queued, so the answer stays 202: the every-minute wake
        # schedule starts the drain. A 503 here would make a client push it twice.
        logger.warning("push queued, but waking the validator failed: %s", exc)


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
    revocation is checked in the same atomic script (raising TokenRevoked), which saves the
    push a Redis round trip.
    """
    payload = _payload(user_id=user_id, user_message=user_message, request_id=request_id)
    body = {"status": "queued", "message_id": payload["message_id"], "user_id": user_id}
    # A user's pushes share a shard: the validator takes them in the order they were counted.
    validator_inbox: Inbox = inbox_for(VALIDATOR_INBOX, user_id)
    stored_key, flight_key = _idempotency_keys(user_id, idempotency_key)
    fingerprint = _fingerprint(user_message) if idempotency_key else ""
    count, armed, previous, state = _push_script(
        keys=[
            request_counter_key(user_id=user_id),
            validator_inbox.key,
            validator_inbox.armed_key,
            stored_key,
            METRICS_KEY,
            flight_key,
            _bucket_key(user_id),
            *_revocation_keys(token),
        ],
        args=[
            json.dumps(payload),
            Inbox.ARMED_TTL_SECONDS,
            IDEMPOTENCY_TTL_SECONDS,
            json.dumps(body),
            fingerprint,
            IDEMPOTENCY_FLIGHT_TTL_SECONDS,
            *_rate(),
        ],
    )
    if state == _REVOKED:
        raise TokenRevoked()
    if state == _THROTTLED:
        raise IngestionThrottled(wait=count)
    replayed = previous is not None
    if replayed:
        body = _replay(previous, fingerprint=fingerprint, in_flight=state == _IN_FLIGHT)
    else:
        body = {**body, "request_count": count}
        if armed:
            _wake(validator_inbox)
        if flight_key:
            _flight_end(flight_key)
    logger.info(
        "push %s: message %s, request_count %s",
        "replayed" if replayed else "queued",
        body["message_id"],
        body["request_count"],
        extra={"user_id": user_id, "message_id": body["message_id"]},
    )
    return body


def _flight_end(flight_key: str) -> None:
    """Mark the first request of an Idempotency-Key finished: repeats now get its response."""
    try:
        store().delete(flight_key)
    except redis.exceptions.RedisError as exc:
        # The marker expires by itself; until then a repeat is told to retry (409).
        logger.warning("could not clear an Idempotency-Key's in-flight marker: %s", exc)


# A batch in one round trip, atomically: refuse a revoked token; mark each item whose client
# message_id was accepted in the last 24 h (or earlier in this batch) a duplicate; refuse the
# whole batch if the user's rate cannot cover its fresh messages; else give them consecutive
# counts (INCRBY once), put them in the validator's inbox, remember their ids, arm the drain.
# KEYS: counter, inbox list, armed flag, metrics, rate bucket, the token's three revocation keys
# ("" when the caller is no token), then one "seen" key per item ("" when the client gave no
# message_id).
# ARGV: item count, armed TTL, seen TTL, rate, burst, then the payloads.
# Returns {state, armed or seconds to wait, then per item its count, or 0 for a duplicate}.
_PUSH_BATCH = (
    _TAKE_TOKENS
    + """
local n = tonumber(ARGV[1])
if KEYS[6] ~= '' and redis.call('EXISTS', KEYS[6], KEYS[7], KEYS[8]) > 0 then return {1, 0} end
local duplicate, here, fresh = {}, {}, 0
for i = 1, n do
  local key = KEYS[8 + i]
  if key ~= '' and (here[key] or redis.call('EXISTS', key) == 1) then
    duplicate[i] = true
  else
    fresh = fresh + 1
    if key ~= '' then here[key] = true end
  end
end
local out = {0, 0}
if fresh > 0 then
  local wait = take_tokens(KEYS[5], tonumber(ARGV[4]), tonumber(ARGV[5]), fresh)
  if wait > 0 then return {3, wait} end
end
local count = redis.call('INCRBY', KEYS[1], fresh) - fresh
local queued = {}
for i = 1, n do
  if duplicate[i] then
    out[2 + i] = 0
  else
    count = count + 1
    out[2 + i] = count
    local payload = ARGV[5 + i]
    queued[#queued + 1] = string.sub(payload, 1, -2) .. ',"request_count":' .. count .. '}'
    if KEYS[8 + i] ~= '' then redis.call('SET', KEYS[8 + i], '1', 'EX', tonumber(ARGV[3])) end
    -- Lua's unpack has a stack limit: push in slices.
    if #queued == 500 then redis.call('RPUSH', KEYS[2], unpack(queued)); queued = {} end
  end
end
if #queued > 0 then redis.call('RPUSH', KEYS[2], unpack(queued)) end
if fresh > 0 then
  redis.call('HINCRBY', KEYS[4], 'pushes', fresh)
  out[2] = redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[2])) and 1 or 0
end
return out
"""
)
_push_batch_script = StoreScript(_PUSH_BATCH)
# How long a client's message_id is remembered: a batch retried within it creates nothing twice.
SEEN_TTL_SECONDS = 24 * 60 * 60


def _seen_key(user_id: str, message_id: str) -> str:
    return f"pusher:seen:{user_id}:{message_id}"


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
    validator_inbox = inbox_for(VALIDATOR_INBOX, user_id)
    counts: list[int] = []
    armed = 0
    if valid:
        state, armed, *counts = _push_batch_script(
            keys=[
                request_counter_key(user_id=user_id),
                validator_inbox.key,
                validator_inbox.armed_key,
                METRICS_KEY,
                _bucket_key(user_id),
                *_revocation_keys(token),
                *(
                    _seen_key(user_id, item.message_id) if item.message_id else ""
                    for _, item in valid
                ),
            ],
            args=[
                len(payloads),
                Inbox.ARMED_TTL_SECONDS,
                SEEN_TTL_SECONDS,
                rate,
                burst,
                *(json.dumps(payload) for payload in payloads),
            ],
        )
        if state == _REVOKED:
            raise TokenRevoked()
        if state == _THROTTLED:
            raise IngestionThrottled(wait=armed)
        if armed:
            _wake(validator_inbox)
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
    for pattern in (f"pusher:idem:{user_id}:*", _seen_key(user_id, "*")):
        keys += client.scan_iter(match=pattern, count=1000)
    return client.delete(*keys)
