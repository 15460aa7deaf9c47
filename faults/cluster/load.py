"""A paced push load through the front that retries each message, as a careful client would.

Every message carries an Idempotency-Key of its own, so retrying one whose answer was lost (a
503 from nginx when its web died mid-request, a timeout, a reset connection) can never push it
twice: the pusher replays the first answer, or says 409 while the first attempt is in flight.
"""

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Self

import urllib3

from faults.api import Account, Api

# Answers worth another try with the same key: the front or a dependency unavailable, the key
# still in flight (its first attempt died; the marker lapses within 10 s), a throttle.
RETRY_STATUSES = frozenset({409, 429, 502, 503, 504})
# How long one message is retried before the client gives up on it.
GIVE_UP_SECONDS = 120.0
_BACKOFF_CAP_SECONDS = 5.0


@dataclass
class RetryingPushLoad:
    """Pushes `total` messages, round-robin over `accounts`, from `threads` client threads.

    Message n is due `n * seconds / total` after the start. Use it as a context manager:
    the threads start on entry and are stopped and joined on exit.
    """

    front_url: str
    accounts: list[Account]
    total: int
    seconds: float
    threads: int
    label: str = "cluster-faults"
    # n -> the message_id of its 202; failed attempts by kind (status code or exception class);
    # n -> what the client saw last for a message it gave up on or that was refused outright.
    acked: dict[int, str] = field(default_factory=dict)
    failures: Counter = field(default_factory=Counter)
    retried: set[int] = field(default_factory=set)
    unacknowledged: dict[int, str] = field(default_factory=dict)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _started: float = 0.0

    def _take(self) -> int | None:
        """The next message number to send, or None when all have been taken."""
        with self._lock:
            if self._next >= self.total:
                return None
            self._next += 1
            return self._next - 1

    def _send(self, api: Api, n: int) -> None:
        """Push message n until it gets a 202, a refusal, or GIVE_UP_SECONDS pass."""
        account = self.accounts[n % len(self.accounts)]
        key = str(uuid.uuid4())
        body = {"message": f"{self.label} message {n} Zq{n:05d}"}
        deadline = time.monotonic() + GIVE_UP_SECONDS
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                reply = api.post(
                    "/api/pusher/push/",
                    body,
                    token=account.access,
                    headers={"Idempotency-Key": key},
                )
            except urllib3.exceptions.HTTPError as exc:
                kind = type(exc).__name__
            else:
                if reply.status == 202:
                    with self._lock:
                        self.acked[n] = reply.data["message_id"]
                    return
                kind = str(reply.status)
                retry_after = reply.headers.get("Retry-After")
                if reply.status not in RETRY_STATUSES:
                    with self._lock:
                        self.failures[kind] += 1
                        self.unacknowledged[n] = f"{kind} {reply.body[:200]!r}"
                    return
            with self._lock:
                self.failures[kind] += 1
                self.retried.add(n)
            # Exponential backoff from 0.2 s, capped, never past the server's Retry-After.
            backoff = min(0.2 * 2 ** (attempt - 1), _BACKOFF_CAP_SECONDS)
            if retry_after and retry_after.isdigit():
                backoff = min(backoff, float(retry_after))
            if time.monotonic() + backoff > deadline or self._stop.wait(backoff):
                with self._lock:
                    self.unacknowledged[n] = f"gave up after {attempt} attempts, last {kind}"
                return

    def _run(self) -> None:
        api = Api(self.front_url)
        while (n := self._take()) is not None:
            # Pacing spreads the pushes over the faults; it waits on the clock only.
            due = self._started + n * self.seconds / self.total
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            self._send(api, n)

    def __enter__(self) -> Self:
        self._started = time.monotonic()
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, name=f"{self.label}-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=GIVE_UP_SECONDS)

    def finish(self, timeout: float) -> None:
        """Wait until every message has been pushed or given up on."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(worker.is_alive() for worker in self._workers):
            raise TimeoutError(f"{self.label}: {self.acked_count} of {self.total} after {timeout}s")

    @property
    def acked_count(self) -> int:
        """Messages acknowledged (202) so far."""
        return len(self.acked)

    def message_ids(self) -> set[str]:
        """The message_id of every message acknowledged so far."""
        with self._lock:
            return set(self.acked.values())

    def failures_snapshot(self) -> Counter:
        """A copy of the failed attempts by kind, so far."""
        with self._lock:
            return Counter(self.failures)
