"""Liveness and readiness probes."""

from django.conf import settings
from django.db import connection
from django_q.brokers import get_broker
from django_q.status import Stat
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.redis import store
from core.search import es_client


class HealthzApi(APIView):
    """Answers 200 while the process runs."""

    authentication_classes = ()
    permission_classes = ()

    @extend_schema(
        responses=inline_serializer("Healthz", {"status": serializers.CharField()}),
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        """Report that the process is alive."""
        return Response({"status": "ok"})


def _check_redis() -> None:
    store().ping()


def _check_elasticsearch() -> None:
    client = es_client().options(request_timeout=3)
    health = client.cluster.health(timeout="2s")
    if health["status"] not in ("yellow", "green"):
        raise RuntimeError(f"cluster status {health['status']}")
    # A cluster without the message index cannot serve a single tracker request.
    if not client.indices.exists_alias(name=settings.TRACKER_INDEX_ALIAS):
        raise RuntimeError(f"index alias {settings.TRACKER_INDEX_ALIAS!r} is missing")


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_queue() -> None:
    clusters = Stat.get_all(broker=get_broker())
    if not any(stat.status != "Stopped" for stat in clusters):
        raise RuntimeError("no queue cluster is running")


_CHECKS = {
    "redis": _check_redis,
    "elasticsearch": _check_elasticsearch,
    "database": _check_database,
    "queue": _check_queue,
}


class ReadyzApi(APIView):
    """Answers 200 when every part is up, or 503 naming each part that is down."""

    authentication_classes = ()
    permission_classes = ()

    @extend_schema(
        responses={
            200: inline_serializer(
                "Readyz", {"status": serializers.CharField(), "checks": serializers.DictField()}
            ),
            503: inline_serializer(
                "ReadyzDown",
                {
                    "status": serializers.CharField(),
                    "checks": serializers.DictField(),
                    "down": serializers.ListField(child=serializers.CharField()),
                },
            ),
        },
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        """Run every check; report each part as ok or with its error."""
        checks: dict[str, str] = {}
        for name, check in _CHECKS.items():
            try:
                check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"down: {type(exc).__name__}: {exc}"[:300]
        down = [name for name, state in checks.items() if state != "ok"]
        if down:
            return Response({"status": "unavailable", "checks": checks, "down": down}, status=503)
        return Response({"status": "ok", "checks": checks})
