"""No plaintext password anywhere it could leak: Redis (store and cache) and the stack's logs.

Runs last (see conftest.py), so the logs it scans hold every registration and login the suite
made; it looks for every password the suite sent.
"""

from collections.abc import Iterator

from faults.api import Accounts, random_password
from faults.probes import record, redis_db
from faults.stack import LOG

REDIS_DBS = (0, 1)  # the store and the cache


def _redis_blobs(db: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, blob) for every key of `db`: the key itself, then each value, field and member."""
    client = redis_db(db)
    for key in client.scan_iter(count=1000):
        yield key, key
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key)]
        elif kind == b"hash":
            values = [blob for pair in client.hgetall(key).items() for blob in pair]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"zset":
            values = client.zrange(key, 0, -1)
        elif kind == b"stream":  # the live tail's announcements: each entry's fields and values
            entries = [entry for _, entry in client.xrange(key)]
            values = [blob for entry in entries for pair in entry.items() for blob in pair]
        elif kind == b"none":  # deleted between SCAN and TYPE (a drain emptied its inbox)
            continue
        else:
            raise AssertionError(f"unexpected Redis type {kind!r} at {key!r}")
        for value in values:
            if value is not None:  # a key may expire between SCAN and the read
                yield key, value


def test_no_plaintext_password_in_redis_or_the_logs(accounts: Accounts) -> None:
    # Send a password along every path one travels: register, login, a failed login.
    account = accounts.create("sc")
    accounts.attempt_login(account.username, random_password())
    passwords = [password.encode() for password in sorted(accounts.passwords)]

    leaks, redis_items = [], 0
    usernames_seen = False
    for db in REDIS_DBS:
        for key, blob in _redis_blobs(db):
            redis_items += 1
            usernames_seen |= account.username.lower().encode() in blob
            leaks += [f"redis db {db} key {key!r}" for p in passwords if p in blob]
    log_files = [path for path in LOG.rglob("*") if path.is_file()]
    for path in log_files:
        text = path.read_bytes()
        leaks += [f"{path.relative_to(LOG)}" for p in passwords if p in text]
    record(
        "security: secrets",
        passwords_checked=len(passwords),
        redis_items_scanned=redis_items,
        log_files_scanned=len(log_files),
        leaks=len(leaks),
    )

    assert usernames_seen, "the scan did not find even the username: it reads nothing"
    assert leaks == []
