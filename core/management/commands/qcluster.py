"""`manage.py qcluster`: django-q2's cluster, with the resilient sentinel."""

from typing import Any

import django_q.cluster
from django_q.management.commands.qcluster import Command as QClusterCommand

from core.cluster import ResilientSentinel


class Command(QClusterCommand):
    """Starts a django-q2 cluster whose sentinel restarts cleanly after a killed child."""

    def handle(self, *args: Any, **options: Any) -> None:
        # Cluster.start() names its sentinel class through the module; swap it before start.
        django_q.cluster.Sentinel = ResilientSentinel  # type: ignore[misc]
        super().handle(*args, **options)
