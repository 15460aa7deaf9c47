"""Prometheus metrics kept in Redis, so every gunicorn and queue process adds to one count."""

import hmac
from collections import Counter
from collections.abc import Callable, Iterator
from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_q.brokers import get_broker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from core.broker import ReliableRedisBroker
from core.contract import CATEGORIES
from core.exceptions import DEPENDENCY_RETRY_AFTER, as_dependency_error, not_found
from core.queue import inbox
from core.redis import store

METRICS_KEY = "metrics:pipeline"
# Gauges of an app's own state, which core cannot import: name -> (help, read at scrape time).
_app_gauges: dict[str, tuple[str, Callable[[], float]]] = {}
# Counters an app adds to the pipeline's hash: name -> (help, label, {label value: field}).
_app_counters: dict[str, tuple[str, str, dict[str, str]]] = {}


def gauge_register(name: str, documentation: str, read: Callable[[], float]) -> None:
    """Add a gauge that `/metrics` reads at every scrape (call it from an AppConfig.ready())."""
    _app_gauges[name] = (documentation, read)


def counter_register(name: str, documentation: str, label: str, fields: dict[str, str]) -> None:
    """Add a counter with one label whose values `metrics_incr` counts, one field each
    (`fields` maps a label value to its field): for a process that serves no scrapes."""
    _app_counters[name] = (documentation, label, fields)


def metrics_incr(**amounts: float) -> None:
    """Add to named pipeline counters (e.g. `tracked_Direct=3`)."""
    pipe = store().pipeline(transaction=False)
    for field, amount in amounts.items():
        pipe.hincrbyfloat(METRICS_KEY, field, amount)
    pipe.execute()


class PipelineCollector(Collector):
    """Reads the counters and queue sizes from Redis at scrape time."""

    def collect(self) -> Iterator[Metric]:
        """Yield the pipeline's metric families."""
        raw = Counter({k: float(v) for k, v in store().hgetall(METRICS_KEY).items()})
        for name in settings.QUEUE_INBOXES:
            raw.update(inbox(name).counts())  # the push's `pushes`, counted as it queues
        yield CounterMetricFamily(
            "logger_pushes", "Messages accepted by the push endpoint.", value=raw.get("pushes", 0)
        )
        tracked = CounterMetricFamily(
            "logger_tracked_messages", "Documents written by the tracker.", labels=["category"]
        )
        for category in CATEGORIES:
            tracked.add_metric([category], raw.get(f"tracked_{category}", 0))
        yield tracked
        yield SummaryMetricFamily(
            "logger_es_bulk_seconds",
            "Elasticsearch bulk request latency.",
            count_value=raw.get("es_bulk_count", 0),
            sum_value=raw.get("es_bulk_seconds", 0),
        )
        # The broker the settings name (Q_CLUSTER["broker_class"]): ours, with a delayed set.
        broker = cast(ReliableRedisBroker, get_broker())
        depth = GaugeMetricFamily("logger_queue_depth", "Queue tasks by state.", labels=["state"])
        depth.add_metric(["ready"], broker.queue_size())
        depth.add_metric(["reserved"], broker.lock_size())
        yield depth
        yield GaugeMetricFamily(
            "logger_retry_backlog",
            "Delayed tasks (validator retries) waiting for their due time.",
            value=broker.delayed_size(),
        )
        inboxes = GaugeMetricFamily(
            "logger_inbox_items", "Messages waiting in a service inbox.", labels=["inbox"]
        )
        dead = GaugeMetricFamily(
            "logger_dead_letters", "Items an inbox could not handle, kept.", labels=["inbox"]
        )
        for name in settings.QUEUE_INBOXES:
            box = inbox(name)
            inboxes.add_metric([name], box.size())
            dead.add_metric([name], box.dead_letters())
        yield inboxes
        yield dead
        for name, (documentation, label, fields) in _app_counters.items():
            family = CounterMetricFamily(name, documentation, labels=[label])
            for value, field in fields.items():
                family.add_metric([value], raw.get(field, 0))
            yield family
        for name, (documentation, read) in _app_gauges.items():
            yield GaugeMetricFamily(name, documentation, value=read())


_registry = CollectorRegistry(auto_describe=False)
_registry.register(PipelineCollector())


# Messages, not secrets (ruff's S105 takes any *TOKEN* constant for one).
METRICS_TOKEN_MISSING = "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>."  # noqa: S105
METRICS_TOKEN_WRONG = "The metrics token is wrong."  # noqa: S105


def _metrics_refusal(request: HttpRequest) -> JsonResponse | None:
    """Why this scrape may not read the metrics (a JSON error), or None if it may."""
    token = settings.METRICS_TOKEN
    if not token:
        if settings.METRICS_TOKEN_REQUIRED:
            # Production without a token: fail closed, and do not even say the page exists.
            return not_found(request)
        return None  # development: open
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not sent:
        detail, code = METRICS_TOKEN_MISSING, "not_authenticated"
    elif not hmac.compare_digest(sent.encode(), token.encode()):  # constant time
        detail, code = METRICS_TOKEN_WRONG, "authentication_failed"
    else:
        return None
    response = JsonResponse({"detail": detail, "code": code}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the metrics in Prometheus' text format, to holders of METRICS_TOKEN if one is set."""
    refusal = _metrics_refusal(request)
    if refusal is not None:
        return refusal
    try:
        body = generate_latest(_registry)
    except Exception as exc:
        # The figures live in Redis: while it is away, the scrape gets the API's 503, not a 500.
        unavailable = as_dependency_error(exc)
        if unavailable is None:
            raise
        response = JsonResponse(
            {"detail": str(unavailable.detail), "code": unavailable.default_code}, status=503
        )
        response["Retry-After"] = DEPENDENCY_RETRY_AFTER
        return response
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
