"""Heartbeats reach the store through connections that give up in 1 s, not the store's 5 s.

A queue reservation and an inbox lease each live 5 s past their last beat: a beat that hung on
a dead connection for the store's own 5 s timeout would let them lapse under a live worker.
"""

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from core.redis import HEARTBEAT_TIMEOUT_SECONDS, heartbeat_store, store


def test_the_heartbeat_client_reaches_the_stores_server():
    store().set("heartbeat:probe", "here", ex=60)

    assert heartbeat_store().get("heartbeat:probe") == "here"  # same server, db, decoding


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


@pytest.mark.single_redis  # points the store at a silent server
def test_a_beat_on_a_hung_connection_gives_up_within_its_timeout(settings, silent_server):
    settings.CACHES = {
        **settings.CACHES,
        "store": {**settings.CACHES["store"], "LOCATION": f"redis://127.0.0.1:{silent_server}/0"},
    }

    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):
        heartbeat_store().ping()

    # The store's own client would have waited its 5 s.
    assert time.monotonic() - started < HEARTBEAT_TIMEOUT_SECONDS + 1.5
