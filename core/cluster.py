"""A django-q2 Sentinel that survives a child killed at the wrong moment.

django-q2 shares two multiprocessing queues between its pusher, workers and monitor. A child
killed while holding one of their internal locks leaves the lock held for ever, and the
whole cluster stops taking tasks (django-q2 issue #23). Instead of reincarnating only the
dead child, this sentinel replaces every child and both queues, then hands the tasks this
cluster had reserved back to the broker so they run again at once. Tasks are idempotent,
so running one twice is safe; losing one is not.

The sentinel also beats for the cluster: every `QUEUE_HEARTBEAT_SECONDS` it extends the
reservations this cluster holds. When the whole cluster dies, the beats stop, and another
cluster takes its tasks once their short visibility deadline passes.
"""

import threading
from multiprocessing import Event
from typing import Any

from django.conf import settings
from django_q.cluster import Sentinel
from django_q.conf import Conf, logger
from django_q.queues import Queue
from redis.exceptions import RedisError

# How often a restart waiting for Redis tries again to hand back the tasks it held.
_REQUEUE_RETRY_SECONDS = 0.5

# Timer values django-q2 gives a worker that timed out (0) or retired after N tasks (-2):
# both are orderly, and the stock handling of them is safe.
_ORDERLY_TIMERS = (0, -2)


class ResilientSentinel(Sentinel):
    """Restarts all children, with fresh queues, when any child dies abruptly."""

    def start(self) -> None:
        """Beat for this cluster's reservations, and guard the children as django-q2 does."""
        # Not until stop_event: on SIGTERM the workers first finish the tasks they hold, which
        # stay reserved only while the beats go on. super().start() returns once they have.
        stopped = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(stopped,), name="reservations-heartbeat", daemon=True
        )
        beat.start()
        try:
            super().start()
        finally:
            stopped.set()

    def _beat(self, stopped: threading.Event) -> None:
        while not stopped.wait(settings.QUEUE_HEARTBEAT_SECONDS):
            try:
                self.broker.reservations_extend()
            except Exception as exc:  # a missed beat costs at most a redelivery, never the cluster
                logger.warning("Reservation heartbeat failed: %s", exc)

    def _requeue_held(self) -> None:
        """Hand this cluster's reserved tasks back before new children reserve any.

        A child often dies because Redis went away: then wait for it rather than let the
        error end the whole cluster (its tasks would stay reserved until the task timeout).
        """
        while True:
            try:
                requeued = self.broker.requeue_consumer()
            except RedisError as exc:
                logger.warning("Could not requeue this cluster's tasks yet: %s", exc)
                if self.stop_event.wait(_REQUEUE_RETRY_SECONDS):
                    return  # stopping: the reservations lapse and another cluster takes them
                continue
            logger.warning("Requeued %d task(s) this cluster held.", requeued)
            return

    def reincarnate(self, process: Any) -> None:
        """Handle a dead child: stock behaviour when orderly, a full restart otherwise."""
        current = process in self.pool or process in (self.monitor, self.pusher)
        if not current:
            return  # a child of the generation we already replaced
        if process in self.pool and int(process.timer.value) in _ORDERLY_TIMERS:
            super().reincarnate(process)
            return
        logger.critical("Child %s died abruptly; restarting all cluster children.", process.name)
        for child in [*self.pool, self.monitor, self.pusher]:
            if child is not None and child.is_alive():
                child.kill()
            if child is not None:
                child.join(timeout=5)
        self.task_queue = Queue(maxsize=Conf.QUEUE_LIMIT) if Conf.QUEUE_LIMIT else Queue()
        self.result_queue = Queue()
        self.event_out = Event()
        self._requeue_held()
        self.spawn_cluster()
        self.reincarnations += 1
