"""Poison in every inbox: each bad item lands in a dead letter, and never blocks the others.

Items of four kinds (and, for the retry inbox, an entry in an old format) are written straight
into the private Redis, the way a bug, a deploy or an operator could leave them: not JSON, a
missing field, a wrong type, and a document Elasticsearch refuses (a `request_id` keyword over
its 32,766-byte limit), in the partition of a user who then pushes 10 messages, so that the
poison sits ahead of them. Each message passes through all three inboxes (the first draw is
scripted to 10, so every one waits out the retry). All 10 are tracked within 30 s, and each
poison item sits in the dead letter where it failed.
`manage.py deadletters replay` puts the poison back through the drains, which re-validate it
and dead-letter it again; `purge` then leaves the stack clean.
"""

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from faults.api import Accounts, Api
from faults.probes import (
    dead_letters,
    delivery_tally,
    inbox_key,
    partition_of,
    record,
    redis_db,
)
from faults.stack import Stack
from tests.support.waiting import wait_for

INBOXES = ("validator", "retry", "tracker")
MESSAGES = 10
TRACKED_WITHIN_SECONDS = 30
BACK_IN_DEAD_LETTER_SECONDS = 30
NOT_JSON = "this is not json"
# Elasticsearch refuses a keyword term over 32,766 bytes (a 400 for that document alone).
IMMENSE = "r" * 33_000


def _now() -> tuple[float, str]:
    """The private Redis's time, as a Unix time and as an ISO 8601 date-time."""
    seconds, micros = redis_db(0).time()
    moment = seconds + micros / 1_000_000
    return moment, datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def _payload(created: str, **changes: Any) -> dict[str, Any]:
    """A pushed payload that holds the contract, with `changes` (a None value drops the field)."""
    payload = {
        "message_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "user_message": "poison",
        "request_count": 1,
        "random_number": 7,
        "created_time": created,
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def _staged(created: str, **changes: Any) -> dict[str, Any]:
    """A payload as the validator stages it for its second attempt (first draw 10)."""
    return {
        **_payload(created, random_number=10),
        "attempts": [{"random_number": 10, "at": created}],
        **changes,
    }


def _document(created: str, **changes: Any) -> dict[str, Any]:
    """A tracker-inbox document that holds the contract, with `changes` applied."""
    document = {
        **_payload(created),
        "category": "Direct",
        "attempts": [{"random_number": 7, "at": created}],
        "random_numbers": [7],
    }
    document.pop("random_number")
    document.update(changes)
    return {name: value for name, value in document.items() if value is not None}


def _poison(created: str) -> dict[str, dict[str, Any]]:
    """Per inbox, each kind of poison: the item, and the inbox whose dead letter should hold it.

    A document Elasticsearch refuses holds the contract, so the validator passes it on and it
    fails at the tracker, whichever inbox it was put in.
    """
    return {
        "validator": {
            "not JSON": (NOT_JSON, "validator"),
            "missing field": (_payload(created, user_message=None), "validator"),
            "wrong type": (_payload(created, request_count="7"), "validator"),
            "refused by Elasticsearch": (_payload(created, request_id=IMMENSE), "tracker"),
        },
        "retry": {
            "not JSON": (NOT_JSON, "retry"),
            "missing field": (_staged(created, message_id=None), "retry"),
            "wrong type": (_staged(created, request_count="7"), "retry"),
            "refused by Elasticsearch": (_staged(created, request_id=IMMENSE), "tracker"),
            # A bare payload where a {item, attempt, since} entry belongs: an old format.
            "not a retry entry": (_payload(created, random_number=10), "retry"),
        },
        "tracker": {
            "not JSON": (NOT_JSON, "tracker"),
            "missing field": (_document(created, user_id=None), "tracker"),
            "wrong type": (_document(created, request_count="7"), "tracker"),
            "refused by Elasticsearch": (_document(created, request_id=IMMENSE), "tracker"),
        },
    }


def _text(item: Any) -> str:
    return item if isinstance(item, str) else json.dumps(item)


def _poison_write(poison: dict[str, dict[str, Any]], now: float, partition: int) -> None:
    """RPUSH into the validator's and tracker's lists; ZADD into the retry's due-time set.

    Nothing wakes the drains here: the next push into `partition` does, as for any item.
    """
    client = redis_db(0)
    for inbox in ("validator", "tracker"):
        client.rpush(
            inbox_key(inbox, partition), *(_text(item) for item, _ in poison[inbox].values())
        )
    members = {}
    for kind, (item, _) in poison["retry"].items():
        wrapped = kind in ("missing field", "wrong type", "refused by Elasticsearch")
        entry = {"item": item, "attempt": 0, "since": now} if wrapped else item
        members[_text(entry)] = now  # due now
    client.zadd(inbox_key("retry", partition, suffix="later"), members)


def _identity(item: Any) -> str:
    """How a poison item is recognised in a dead letter: its message_id, or its whole text."""
    if isinstance(item, dict) and "message_id" in item:
        return item["message_id"]
    return _text(item)


def _expected(poison: dict[str, dict[str, Any]]) -> dict[str, Counter]:
    """Per inbox, the identities its dead letter should hold."""
    expected = {inbox: Counter() for inbox in INBOXES}
    for kinds in poison.values():
        for item, dead_in in kinds.values():
            expected[dead_in][_identity(item)] += 1
    return expected


def _dead_identities(stack: Stack) -> dict[str, Counter]:
    """Per inbox, the identities in its dead letter, read with `manage.py deadletters list`."""
    listed = json.loads(stack.manage("deadletters", "list", "--json", "--limit", "1000"))
    return {
        inbox: Counter(_identity(entry["item"]) for entry in entries)
        for inbox, entries in listed.items()
        if inbox in INBOXES  # the syslog listener's inbox holds lines, not pipeline items
    }


def _replay(stack: Stack, inbox: str) -> tuple[int, dict[str, bool]]:
    """Replay one inbox's dead letter; wait until it is full again; say what came back."""
    before = dead_letters(inbox)
    replayed = json.loads(stack.manage("deadletters", "replay", "--inbox", inbox, "--json"))
    wait_for(
        lambda: len(dead_letters(inbox)) == len(before),
        BACK_IN_DEAD_LETTER_SECONDS,
        f"replayed poison back in the {inbox} dead letter",
    )
    after = dead_letters(inbox)
    return replayed["replayed"], {
        "same_items": sorted(_text(e["item"]) for e in after)
        == sorted(_text(e["item"]) for e in before),
        "checked_again": min(e["at"] for e in after) > max(e["at"] for e in before),
    }


def test_poison_in_every_inbox_is_dead_lettered_and_blocks_nothing(
    stack: Stack, api: Api, accounts: Accounts, all_retried: None
) -> None:
    assert _dead_identities(stack) == {inbox: Counter() for inbox in INBOXES}
    user = accounts.create("pn")
    now, created = _now()
    poison = _poison(created)
    _poison_write(poison, now, partition_of(user.user_id))

    replies = [api.push(user, f"after the poison {n}") for n in range(MESSAGES)]
    ids = [reply.data["message_id"] for reply in replies if reply.status == 202]
    tally = delivery_tally(ids, [user.user_id], TRACKED_WITHIN_SECONDS)
    expected = _expected(poison)
    wait_for(
        lambda: _dead_identities(stack) == expected, TRACKED_WITHIN_SECONDS, "poison dead-lettered"
    )
    counted = json.loads(stack.manage("deadletters", "count", "--json"))
    counts = {inbox: counted[inbox] for inbox in INBOXES}

    # Replay: the drains check every item again, and every one fails again.
    replayed, returned = {}, {}
    for inbox in INBOXES:
        replayed[inbox], returned[inbox] = _replay(stack, inbox)
    purged = {
        inbox: json.loads(stack.manage("deadletters", "purge", "--inbox", inbox, "--yes", "--json"))
        for inbox in INBOXES
    }
    record(
        "poison in every inbox",
        tally,
        poison_kinds={inbox: sorted(kinds) for inbox, kinds in poison.items()},
        dead_letters=counts,
        replayed=replayed,
        returned_to_dead_letter=returned,
    )

    assert len(ids) == MESSAGES
    assert tally.exact, tally
    assert tally.tracked == MESSAGES
    assert tally.waited_seconds <= TRACKED_WITHIN_SECONDS
    assert counts == {inbox: sum(expected[inbox].values()) for inbox in INBOXES}
    assert replayed == counts
    assert all(r == {"same_items": True, "checked_again": True} for r in returned.values()), (
        returned
    )
    assert purged == {inbox: {"purged": counts[inbox]} for inbox in INBOXES}
