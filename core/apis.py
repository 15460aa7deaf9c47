"""Liveness and readiness probes."""

import logging

from django.conf import settings
from django.db import connection
from django_q.brokers import get_broker
from django_q.status import Stat
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.openapi import response_example
from core.readiness import readiness_checks
from core.redis import store

logger = logging.getLogger(__name__)

# A part's state in /readyz. The probe is public: why a part is down (hosts, index names,
# errors) goes to the log with the request id, never into the answer.
PART_UP = "ok"
PART_DOWN = "down"
_ALL_UP = dict.fromkeys(("redis", "database", "queue", "elasticsearch"), PART_UP)


class HealthzApi(APIView):
    """Answers 200 while the process runs."""

    authentication_classes = ()
    permission_classes = ()

    @extend_schema(
        summary="Liveness",
        responses=inline_serializer("Healthz", {"status": serializers.CharField()}),
        examples=[response_example({"status": "ok"})],
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        """Report that the process is alive."""
        return Response({"status": "ok"})


def redis_check() -> None:
    """Raise unless Redis answers PING."""
    store().ping()


def database_check() -> None:
    """Raise unless the database answers a query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def queue_check() -> None:
    """Raise unless at least one queue cluster is running."""
    clusters = Stat.get_all(broker=get_broker())
    if not any(stat.status != "Stopped" for stat in clusters):
        raise RuntimeError("no queue cluster is running")


class ReadyzApi(APIView):
    """Answers 200 when every part is up, or 503 naming each part that is down."""

    authentication_classes = ()
    permission_classes = ()

    @extend_schema(
        summary="Readiness of every part",
        responses={
            200: inline_serializer(
                "Readyz",
                {
                    "status": serializers.CharField(),
                    "version": serializers.CharField(),
                    "checks": serializers.DictField(),
                },
            ),
            503: inline_serializer(
                "ReadyzDown",
                {
                    "status": serializers.CharField(),
                    "version": serializers.CharField(),
                    "checks": serializers.DictField(),
                    "down": serializers.ListField(child=serializers.CharField()),
                },
            ),
        },
        examples=[
            response_example({"status": PART_UP, "version": "0.3.0", "checks": _ALL_UP}),
            response_example(
                {
                    "status": "unavailable",
                    "version": "0.3.0",
                    "checks": {**_ALL_UP, "elasticsearch": PART_DOWN},
                    "down": ["elasticsearch"],
                },
                status=503,
                name="Elasticsearch down",
            ),
        ],
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        """Run every check; report each part as ok or down (the error goes to the log)."""
        checks: dict[str, str] = {}
        for name, check in readiness_checks().items():
            try:
                check()
                checks[name] = PART_UP
            except Exception as exc:
                checks[name] = PART_DOWN
                logger.warning("readiness: %s is down: %s: %s", name, type(exc).__name__, exc)
        down = [name for name, state in checks.items() if state != PART_UP]
        # The version tells an operator which release answers, ready or not.
        version = settings.PROJECT_VERSION
        if down:
            body = {"status": "unavailable", "version": version, "checks": checks, "down": down}
            return Response(body, status=503)
        return Response({"status": "ok", "version": version, "checks": checks})
