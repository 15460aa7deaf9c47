"""The push: count the request, draw a number, and hand the message to the validator."""

import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import redis.exceptions

from accounts.authentication import UncheckedClaims
from accounts.exceptions import TokenRevoked
from accounts.selectors import request_counter_key
from core.contract import date_format
from core.metrics import METRICS_KEY
from core.queue import Inbox, inbox
from core.randomness import random_number
from core.redis import StoreScript, store
from pusher.exceptions import IdempotencyKeyInFlight, IdempotencyKeyReused

logger = logging.getLogger(__name__)

IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
# The validator's inbox, by name: the pusher hands work on the way a separate service would.
VALIDATOR_INBOX = "validator"

# One round trip, atomically: refuse a revoked token; answer a stored Idempotency-Key; or
# count the push (INCR), put the message in the validator's inbox with its count, arm the
# inbox's drain, and remember the response under the key, marked in flight until the request
# finishes.
# KEYS: counter, inbox list, inbox armed flag, idempotency key ("" when none), metrics,
# the token's revocation key ("" when none), the key's in-flight marker.
# ARGV: payload JSON, armed TTL, idempotency TTL, response JSON, body fingerprint, flight TTL.
# Returns {count, armed, stored "fingerprint\nresponse" or false, state}: state 1 = revoked,
# 2 = the key's first request is still in flight, 0 otherwise.
# The count is spliced into the two JSON objects (made by json.dumps, so they end in "}")
# before their closing brace, which is cheaper than cjson decoding and re-encoding them.
_PUSH = """
if KEYS[6] ~= '' and redis.call('EXISTS', KEYS[6]) == 1 then return {0, 0, false, 1} end
if KEYS[4] ~= '' then
  local previous = redis.call('GET', KEYS[4])
  if previous then
    if redis.call('EXISTS', KEYS[7]) == 1 then return {0, 0, previous, 2} end
    return {0, 0, previous, 0}
  end
end
local count = redis.call('INCR', KEYS[1])
redis.call('HINCRBY', KEYS[5], 'pushes', 1)
local counted = ',"request_count":' .. count .. '}'
redis.call('RPUSH', KEYS[2], string.sub(ARGV[1], 1, -2) .. counted)
local armed = redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[2]))
if KEYS[4] ~= '' then
  local stored = ARGV[5] .. '\\n' .. string.sub(ARGV[4], 1, -2) .. counted
  redis.call('SET', KEYS[4], stored, 'EX', tonumber(ARGV[3]))
  redis.call('SET', KEYS[7], '1', 'EX', tonumber(ARGV[6]))
end
return {count, armed and 1 or 0, false, 0}
"""
_REVOKED, _IN_FLIGHT = 1, 2
# How long a key counts as in flight if its request died before saying it had finished.
IDEMPOTENCY_FLIGHT_TTL_SECONDS = 10

_push_script = StoreScript(_PUSH)


def _idempotency_keys(user_id: str, key: str | None) -> tuple[str, str]:
    """The Redis keys of an Idempotency-Key's stored response and in-flight marker."""
    if not key:
        return "", ""
    digest = hashlib.sha256(key.encode()).hexdigest()
    stored = f"pusher:idem:{user_id}:{digest}"
    return stored, f"{stored}:flight"


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
    payload = {
        "message_id": str(uuid.uuid4()),
        "user_id": user_id,
        "user_message": user_message,
        "random_number": random_number(attempt=1),
        "created_time": date_format(datetime.now(UTC)),
        "request_id": request_id,
    }
    body = {"status": "queued", "message_id": payload["message_id"], "user_id": user_id}
    validator_inbox: Inbox = inbox(VALIDATOR_INBOX)
    stored_key, flight_key = _idempotency_keys(user_id, idempotency_key)
    fingerprint = _fingerprint(user_message)
    count, armed, previous, state = _push_script(
        keys=[
            request_counter_key(user_id=user_id),
            validator_inbox.key,
            validator_inbox.armed_key,
            stored_key,
            METRICS_KEY,
            token.revocation_key if token is not None else "",
            flight_key,
        ],
        args=[
            json.dumps(payload),
            Inbox.ARMED_TTL_SECONDS,
            IDEMPOTENCY_TTL_SECONDS,
            json.dumps(body),
            fingerprint,
            IDEMPOTENCY_FLIGHT_TTL_SECONDS,
        ],
    )
    if state == _REVOKED:
        raise TokenRevoked()
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
