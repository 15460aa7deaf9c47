"""Push messages and drain the validator and tracker hops in this one process, for a profile.

    py-spy record --rate 250 --format raw -o var/drains.txt -- \\
        .venv/bin/python bench/drains.py 20000
    .venv/bin/python bench/profile.py var/drains.txt 20000 250

It runs on the test settings, against Redis database 6 and a scratch index alias of its own
(deleted afterwards), with the queue's task hand-offs switched off: the drains are called here
one after the other, so only their own work is measured. It prints each hop's CPU time a
message.
"""

import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
os.environ["TEST_REDIS_URL"] = "redis://127.0.0.1:6379/6"
os.environ["TRACKER_INDEX_ALIAS"] = "profile-messages"


def main(messages: int) -> None:
    """Push `messages` for 8 users, then drain each hop until empty, timing its CPU."""
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)
    from core.heap import heap_freeze
    from core.queue import inboxes, scheduling
    from core.redis import store
    from pusher.services import message_push
    from tests.support.elasticsearch import index_drop
    from tests.support.queue import drain
    from tracker.documents import index_setup

    def nothing(*args: object, **kwargs: object) -> None:
        return None

    # No drain tasks: this process is the only drain.
    inboxes.async_task = inboxes.async_task_in = scheduling.async_task = nothing
    store().flushdb()
    index_setup()
    try:
        users = [str(uuid.uuid4()) for _ in range(8)]
        for n in range(messages):
            message_push(
                user_id=users[n % 8], user_message=f"profile {n} HelloWorld", request_id="p"
            )
        heap_freeze()  # as each queue worker does when it starts (core.heap)
        for name in ("validator", "tracker"):
            start = time.process_time()
            while drain(name):
                pass
            cpu = (time.process_time() - start) / messages * 1e6
            print(f"{name}: {cpu:.1f} us of CPU a pushed message", file=sys.stderr)
    finally:
        index_drop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
