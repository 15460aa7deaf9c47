"""Whether the credentials behind the open live-tail streams still hold, checked for all at once.

An open stream must end soon after its credential is revoked (a JWT logged out, its family
revoked or its user removed; an API key deleted, expired or left without its owner). Each stream
asking Redis on its own every few seconds woke every idle stream that often, and with 500 open
the tail process spent about 5 % of a core on the asking (bench P12). Instead one watcher per
event loop checks every open stream's credential in one pipelined round trip each round, and
wakes only the streams whose credential no longer holds; an idle stream then wakes once a
keep-alive, which it has to anyway.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis.asyncio
import redis.exceptions

from accounts.selectors import api_key_key, api_key_live
from tracker.tail.tickets import TailCredential

logger = logging.getLogger(__name__)


def _queue_checks(pipe: Any, credential: TailCredential) -> int:
    """Add the commands that tell whether `credential` holds to `pipe`; how many."""
    # One EXISTS a key: a credential's keys share its user's slot today, but a pipeline on a
    # Redis Cluster refuses a multi-key command the moment they do not.
    for key in credential.revocation_keys:
        pipe.exists(key)
    if credential.api_key_id is None:
        return len(credential.revocation_keys)
    pipe.hgetall(api_key_key(key_id=credential.api_key_id))
    return len(credential.revocation_keys) + 1


def _revoked(credential: TailCredential, replies: Sequence[Any]) -> bool:
    """Whether `credential` no longer holds, from the replies to its `_queue_checks`."""
    keys = len(credential.revocation_keys)
    if any(replies[:keys]):
        return True
    return credential.api_key_id is not None and not api_key_live(record=replies[keys])


def watched(credential: TailCredential) -> bool:
    """Whether anything can revoke `credential` (else only its expiry can end a stream)."""
    return bool(credential.revocation_keys) or credential.api_key_id is not None


async def credential_revoked(client: redis.asyncio.Redis, credential: TailCredential) -> bool:
    """Whether one stream's `credential` no longer holds, asked with plain commands.

    A stream's first check, on its own connection: a client that leaves at once cancels it
    there, and redis-py's plain commands are what the stream's cancellation handling is
    proven on (a cluster pipeline cancelled midway once left the connection open).
    """
    if credential.revocation_keys and await client.exists(*credential.revocation_keys):
        return True
    if credential.api_key_id is None:
        return False
    # Decoded to str (decode_responses), which redis-py's annotations cannot know.
    record = cast(dict[str, str], await client.hgetall(api_key_key(key_id=credential.api_key_id)))
    return not api_key_live(record=record)


async def credentials_revoked(
    client: redis.asyncio.Redis, credentials: Sequence[TailCredential]
) -> list[bool]:
    """For each of `credentials`, whether it no longer holds: one round trip for them all."""
    pipe = client.pipeline(transaction=False)
    counts = [_queue_checks(pipe, credential) for credential in credentials]
    replies = await pipe.execute() if len(pipe) else []
    verdicts, at = [], 0
    for credential, count in zip(credentials, counts, strict=True):
        verdicts.append(_revoked(credential, replies[at : at + count]))
        at += count
    return verdicts


class CredentialWatch:
    """The credentials of the streams open on one event loop, checked every `interval()` s.

    `watch(credential)` returns an event that is set once the credential no longer holds;
    `unwatch(event)` when the stream is over. The watcher runs while anything is watched, on a
    Redis connection of its own from `client_factory()`.
    """

    def __init__(
        self,
        client_factory: Callable[[], redis.asyncio.Redis],
        interval: Callable[[], float],
    ) -> None:
        self._client_factory, self._interval = client_factory, interval
        self._watched: dict[asyncio.Event, TailCredential] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, credential: TailCredential) -> asyncio.Event:
        """Watch `credential` for one stream; the event is set when it is revoked."""
        revoked = asyncio.Event()
        self._watched[revoked] = credential
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return revoked

    def unwatch(self, revoked: asyncio.Event) -> None:
        """The stream of `revoked` is over: stop checking its credential."""
        self._watched.pop(revoked, None)

    async def _run(self) -> None:
        client = self._client_factory()
        try:
            while self._watched:
                await asyncio.sleep(self._interval())
                await self._check(client)
        finally:
            # Before any await: a stream watched from here on starts a run of its own, instead
            # of joining this one as it closes.
            self._task = None
            await client.aclose()

    async def _check(self, client: redis.asyncio.Redis) -> None:
        # Streams of one credential (a dashboard's tabs, a bench's crowd) are asked about once.
        by_credential: dict[TailCredential, list[asyncio.Event]] = {}
        for event, credential in list(self._watched.items()):
            by_credential.setdefault(credential, []).append(event)
        credentials = list(by_credential)
        try:
            verdicts = await credentials_revoked(client, credentials)
        except redis.exceptions.RedisError as exc:
            # Each stream's own XREAD fails too and ends it; the client reconnects.
            logger.warning("Live tail credential check failed: %s", exc)
            return
        except Exception:
            # Never let the watcher die: every open stream would then outlive its revocation.
            logger.exception("Live tail credential check failed")
            return
        for credential, revoked in zip(credentials, verdicts, strict=True):
            if revoked:
                for event in by_credential[credential]:
                    event.set()
