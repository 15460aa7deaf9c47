"""A partition's dead letter: the items its drain can never handle, kept with their errors.

An item goes there when it is not JSON, breaks the contract, is refused for good, is still
failing after `QUEUE_RETRY_MAX_SECONDS`, or was taken too often without its drain finishing.
Each entry is `{item, errors, at, attempts}`. Operators list, replay and purge them
(`manage.py deadletters`); an erasure removes a user's.
"""

import json
from collections.abc import Callable
from typing import Any, cast

from redis.client import Pipeline

from core.contract import json_encode
from core.redis import store


def _dead_item_matches(entry: str, match: Callable[[Any], bool]) -> bool:
    """Whether the item of a dead-letter entry is one `match` picks (never for a malformed one)."""
    try:
        value = json.loads(entry)
    except ValueError:
        return False
    return isinstance(value, dict) and "item" in value and bool(match(value["item"]))


class DeadLetters:
    """The dead-letter operations of a partition's inbox (mixed into `InboxPartition`)."""

    key: str
    dead_key: str

    def rescue(self) -> bool:
        """Wake a drain if work is due: `InboxPartition` provides it."""
        raise NotImplementedError

    def dead_letters(self) -> int:
        """Items kept in the dead letter."""
        return store().llen(self.dead_key)

    def dead_append(self, failures: list[tuple[Any, list[str]]], *, at: str) -> None:
        """Set items aside straight away, each with its errors: what a producer (the syslog
        listener) received but can never hand on. `at` is the time, as messages write it."""
        if failures:
            entries = [
                json_encode({"item": item, "errors": errors, "at": at, "attempts": 1})
                for item, errors in failures
            ]
            store().rpush(self.dead_key, *entries)

    def dead_entries(self, *, start: int = 0, count: int = 100) -> list[dict[str, Any]]:
        """Dead-letter entries from position `start`, oldest first: item, errors, at, attempts."""
        raw = store().lrange(self.dead_key, start, start + count - 1)
        return [json.loads(entry) for entry in raw]

    def dead_replay(self, *, count: int | None = None) -> int:
        """Put the oldest dead-lettered items back in the inbox; return how many.

        They go through the drain again, contract check included: an item still broken comes
        straight back to the dead letter.
        """
        # WATCH: an entry dead-lettered meanwhile must not be trimmed away unreplayed; then the
        # read is simply done again (during an incident, entries keep arriving).
        # redis-py types the callable as returning nothing; value_from_callable returns its value.
        replayed = store().transaction(
            lambda pipe: self._dead_move(pipe, count),  # type: ignore[arg-type]
            self.dead_key,
            value_from_callable=True,
        )
        self.rescue()
        return cast(int, replayed)

    def _dead_move(self, pipe: Pipeline, count: int | None) -> int:
        """In a WATCHed transaction: move the oldest dead letters back to the list."""
        entries = pipe.lrange(self.dead_key, 0, -1 if count is None else count - 1)
        if not entries:
            return 0
        texts = []
        for entry in entries:
            item = json.loads(entry)["item"]
            # An item that was not JSON goes back as the very text it was.
            texts.append(item if isinstance(item, str) else json.dumps(item))
        pipe.multi()
        pipe.ltrim(self.dead_key, len(entries), -1)
        pipe.rpush(self.key, *texts)
        return len(entries)

    def dead_remove(self, match: Callable[[Any], bool], *, chunk: int = 1_000) -> int:
        """Delete the dead letters whose item `match` picks; return how many.

        Each goes by its exact value (LREM), not by position, so entries appended meanwhile
        are never touched.
        """
        redis = store()
        removed = start = 0
        while entries := redis.lrange(self.dead_key, start, start + chunk - 1):
            picked = [entry for entry in entries if _dead_item_matches(entry, match)]
            gone = 0
            if picked:
                pipe = redis.pipeline(transaction=False)
                for entry in picked:
                    pipe.lrem(self.dead_key, 1, entry)
                gone = sum(pipe.execute())
            removed += gone
            # What was removed shifted the rest towards the head.
            start += len(entries) - gone
        return removed

    def dead_purge(self) -> int:
        """Delete every dead-lettered item; return how many there were."""
        pipe = store().pipeline(transaction=True)
        pipe.llen(self.dead_key)
        pipe.delete(self.dead_key)
        count, _ = pipe.execute()
        return int(count)
