"""The push: count the request, draw a number, and hand the message to the validator."""

import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from accounts.authentication import UncheckedClaims
from accounts.exceptions import TokenRevoked
from accounts.selectors import request_counter_key
from core.contract import date_format
from core.metrics import METRICS_KEY
from core.queue import Inbox, inbox
from core.randomness import random_number
from core.redis import StoreScript

logger = logging.getLogger(__name__)

IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
# The validator's inbox, by name: the pusher hands work on the way a separate service would.
VALIDATOR_INBOX = "validator"

# One round trip, atomically: refuse a revoked token; replay a stored Idempotency-Key
# response; or count the push (INCR), put the message in the validator's inbox with its
# count, arm the inbox's drain, and remember the response under the key.
# KEYS: counter, inbox list, inbox armed flag, idempotency key ("" when none), metrics,
# the token's revocation key. ARGV: payload JSON, armed TTL, idempotency TTL, response JSON.
# Returns {count, armed, stored response or false, revoked}.
# The count is spliced into the two JSON objects (made by json.dumps, so they end in "}")
# before their closing brace, which is cheaper than cjson decoding and re-encoding them.
_PUSH = """
if redis.call('EXISTS', KEYS[6]) == 1 then return {0, 0, false, 1} end
if KEYS[4] ~= '' then
  local previous = redis.call('GET', KEYS[4])
  if previous then return {0, 0, previous, 0} end
end
local count = redis.call('INCR', KEYS[1])
redis.call('HINCRBY', KEYS[5], 'pushes', 1)
local counted = ',"request_count":' .. count .. '}'
redis.call('RPUSH', KEYS[2], string.sub(ARGV[1], 1, -2) .. counted)
local armed = redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[2]))
if KEYS[4] ~= '' then
  redis.call('SET', KEYS[4], string.sub(ARGV[4], 1, -2) .. counted, 'EX', tonumber(ARGV[3]))
end
return {count, armed and 1 or 0, false, 0}
"""

_push_script = StoreScript(_PUSH)


def _idempotency_key(user_id: str, key: str | None) -> str:
    if not key:
        return ""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"pusher:idem:{user_id}:{digest}"


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
    count, armed, previous, revoked = _push_script(
        keys=[
            request_counter_key(user_id=user_id),
            validator_inbox.key,
            validator_inbox.armed_key,
            _idempotency_key(user_id, idempotency_key),
            METRICS_KEY,
            token.revocation_key if token is not None else "",
        ],
        args=[
            json.dumps(payload),
            Inbox.ARMED_TTL_SECONDS,
            IDEMPOTENCY_TTL_SECONDS,
            json.dumps(body),
        ],
    )
    if revoked:
        raise TokenRevoked()
    if armed:
        validator_inbox.wake()
    replayed = previous is not None
    body = json.loads(previous) if replayed else {**body, "request_count": count}
    logger.info(
        "push %s: message %s, request_count %s",
        "replayed" if replayed else "queued",
        body["message_id"],
        body["request_count"],
        extra={"user_id": user_id, "message_id": body["message_id"]},
    )
    return body
