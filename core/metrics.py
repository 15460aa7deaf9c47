"""Prometheus metrics kept in Redis, so every gunicorn and queue process adds to one count."""

from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_q.brokers import get_broker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from core.contract import CATEGORIES
from core.queue import inbox
from core.redis import store

METRICS_KEY = "metrics:pipeline"


def metrics_incr(**amounts: float) -> None:
    """Add to named pipeline counters (e.g. `tracked_Direct=3`)."""
    pipe = store().pipeline(transaction=False)
    for field, amount in amounts.items():
        pipe.hincrbyfloat(METRICS_KEY, field, amount)
    pipe.execute()


class PipelineCollector(Collector):
    """Reads the counters and queue sizes from Redis at scrape time."""

    def collect(self) -> Iterator:
        """Yield the pipeline's metric families."""
        raw = {k: float(v) for k, v in store().hgetall(METRICS_KEY).items()}
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
        broker = get_broker()
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


_registry = CollectorRegistry(auto_describe=False)
_registry.register(PipelineCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the metrics in Prometheus' text format."""
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
