"""The live tail's credential watcher against the real Redis: it tells credentials apart, and
it starts again for a stream watched after every earlier one has gone."""

import asyncio
import uuid

import pytest
import redis.asyncio
from django.conf import settings

from core.redis import store
from tracker.tail import TailCredential
from tracker.tail.watch import CredentialWatch

pytestmark = pytest.mark.single_redis  # a plain client on the store's URL

INTERVAL = 0.05
DEADLINE = 5.0


class _SlowToClose(redis.asyncio.Redis):
    """A client whose aclose() waits for `opened`, and says it has begun (`closing`)."""

    closing: asyncio.Event
    opened: asyncio.Event

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        self.closing.set()
        await self.opened.wait()
        await super().aclose(close_connection_pool)


def _watch(
    closing: asyncio.Event | None = None, opened: asyncio.Event | None = None
) -> CredentialWatch:
    def client() -> redis.asyncio.Redis:
        made = _SlowToClose.from_url(settings.CACHES["store"]["LOCATION"], decode_responses=True)
        made.closing, made.opened = closing or asyncio.Event(), opened or asyncio.Event()
        if opened is None:
            made.opened.set()
        return made

    return CredentialWatch(client, lambda: INTERVAL)


def _credential() -> TailCredential:
    return TailCredential(revocation_keys=(f"test:revoked:{uuid.uuid4()}",))


def _revoke(credential: TailCredential) -> None:
    store().set(credential.revocation_keys[0], 1, ex=60)


def test_only_the_revoked_credentials_streams_are_woken() -> None:
    doomed, kept = _credential(), _credential()

    async def run() -> tuple[bool, bool]:
        watch = _watch()
        events = [watch.watch(doomed), watch.watch(doomed), watch.watch(kept)]
        _revoke(doomed)
        await asyncio.wait_for(asyncio.gather(events[0].wait(), events[1].wait()), DEADLINE)
        await asyncio.sleep(3 * INTERVAL)  # rounds enough to have woken `kept` by mistake
        for event in events:
            watch.unwatch(event)
        return events[0].is_set() and events[1].is_set(), events[2].is_set()

    assert asyncio.run(run()) == (True, False)


def test_a_stream_watched_after_the_last_one_went_is_checked_too() -> None:
    first, second = _credential(), _credential()

    async def run() -> bool:
        watch = _watch()
        watch.unwatch(watch.watch(first))
        await asyncio.sleep(3 * INTERVAL)  # the run ends: nothing is watched
        revoked = watch.watch(second)
        _revoke(second)
        await asyncio.wait_for(revoked.wait(), DEADLINE)
        watch.unwatch(revoked)
        return revoked.is_set()

    assert asyncio.run(run())


def test_a_stream_watched_while_the_last_run_closes_is_checked_too() -> None:
    first, second = _credential(), _credential()

    async def run() -> bool:
        closing, opened = asyncio.Event(), asyncio.Event()
        watch = _watch(closing, opened)
        watch.unwatch(watch.watch(first))
        await asyncio.wait_for(closing.wait(), DEADLINE)  # the run is closing its client
        revoked = watch.watch(second)
        _revoke(second)
        try:
            await asyncio.wait_for(revoked.wait(), DEADLINE)
        finally:
            opened.set()
            watch.unwatch(revoked)
        return revoked.is_set()

    assert asyncio.run(run())
