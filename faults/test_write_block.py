"""A write block on the index for 60 s while pushes go on: nothing is dead-lettered.

`index.blocks.write` is what an operator sets, and what Elasticsearch's flood-stage disk
watchdog sets itself (read-only-allow-delete) on a full disk. Every document refused meanwhile
(403 cluster_block_exception) waits in the tracker inbox's due-time set and is retried alone,
with capped backoff, until the block is lifted; then all are tracked.
"""

import time

from faults.api import Accounts, Api, PushLoad
from faults.probes import (
    Sampler,
    dead_letter_counts,
    delivery_tally,
    es,
    inbox_total,
    record,
)
from faults.stack import INDEX_ALIAS, Stack
from tests.support.waiting import wait_for

BLOCK_SECONDS = 60
MESSAGES = 300
PUSH_SECONDS = 70  # pushes before, during and after the block
PUSHES_BEFORE_BLOCK = 20
# The backoff is capped at settings.QUEUE_RETRY_CAP_SECONDS (10 s): the last retry of a refused
# document comes at most that long after the block is lifted.
TRACKED_WITHIN_SECONDS = 30


def _block(blocked: bool) -> None:
    """Set or lift the write block on every index behind the alias."""
    es().indices.put_settings(index=INDEX_ALIAS, settings={"index.blocks.write": blocked})


def test_a_write_block_dead_letters_nothing_and_everything_is_tracked_after(
    stack: Stack, api: Api, accounts: Accounts
) -> None:
    users = [accounts.create("wb") for _ in range(2)]
    dead_before = dead_letter_counts()

    def waiting_retry() -> int:
        return inbox_total("zcard", "tracker", "later")

    with PushLoad(api, users, MESSAGES, PUSH_SECONDS, label="write-block") as load:
        wait_for(lambda: load.sent >= PUSHES_BEFORE_BLOCK, 30, "first pushes")
        _block(True)
        try:
            blocked_at = time.monotonic()
            with Sampler(waiting_retry) as sampler:
                # The block itself is the fault under test: a deliberate wait, not a poll.
                time.sleep(BLOCK_SECONDS)
        finally:
            _block(False)
        lifted_at = time.monotonic()
        load.finish(timeout=PUSH_SECONDS + 30)

    tally = delivery_tally(load.message_ids, [u.user_id for u in users], TRACKED_WITHIN_SECONDS)
    tracked_after_lift = time.monotonic() - lifted_at
    dead_after = dead_letter_counts()
    record(
        "index write block",
        tally,
        block_seconds=round(lifted_at - blocked_at, 1),
        peak_waiting_for_retry=max(sampler.samples),
        tracked_seconds_after_lift=round(tracked_after_lift, 1),
        dead_lettered={key: dead_after[key] - dead_before[key] for key in dead_after},
        push_statuses=dict(load.statuses),
    )

    assert load.statuses == {202: MESSAGES}
    assert max(sampler.samples) > 0, "no document was refused while the block held"
    assert dead_after == dead_before
    assert tally.exact, tally
    assert tally.tracked == MESSAGES
    assert tracked_after_lift <= TRACKED_WITHIN_SECONDS
