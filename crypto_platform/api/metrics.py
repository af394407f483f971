"""Prometheus: the platform's state read from the systems on each scrape, and request metrics.

Names are fixed (a Grafana dashboard queries them): crypto_kafka_messages_total,
crypto_kafka_consumer_lag, crypto_dlq_messages, crypto_mongo_documents,
crypto_tick_age_seconds, crypto_latest_price, crypto_aggregate_window_end_seconds,
crypto_backend_up, crypto_retention_lost_offsets_total, crypto_gaps_open,
crypto_gap_missing_seconds, crypto_api_requests_total, crypto_api_request_duration_seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crypto_platform.api.backends import MongoReading
from crypto_platform.api.errors import BACKENDS
from crypto_platform.api.models import utc
from crypto_platform.api.observation import Observation
from crypto_platform.settings import Settings


class RequestMetrics:
    """Per-app request counter and latency histogram, labelled by route template."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "crypto_api_requests",
            "API requests by method, route and status.",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "crypto_api_request_duration_seconds",
            "API request duration by method and route.",
            ["method", "path"],
            registry=self.registry,
        )

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Pure ASGI (no per-request task): counts every HTTP request once it has answered."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_and_note(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_and_note)
            finally:
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                method = scope["method"]
                self.requests.labels(method, path, str(status)).inc()
                self.duration.labels(method, path).observe(time.perf_counter() - started)

        return measured


class _Families:
    """A one-shot collector: the families of one observation."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def platform_families(seen: Observation, settings: Settings) -> list[Metric]:
    """The platform's gauges and counters from one observation (absent when a backend is down)."""
    up = GaugeMetricFamily("crypto_backend_up", "1 if the backend answered.", labels=["backend"])
    for backend in BACKENDS:
        up.add_metric([backend], 1.0 if seen.up(backend) else 0.0)
    families: list[Metric] = [up]
    if seen.kafka is not None:
        messages = CounterMetricFamily(
            "crypto_kafka_messages", "Messages per topic (sum of end offsets).", labels=["topic"]
        )
        for topic, count in seen.kafka.messages.items():
            messages.add_metric([topic], float(count))
        lag = GaugeMetricFamily(
            "crypto_kafka_consumer_lag", "The MongoDB sink group's lag.", labels=["group", "topic"]
        )
        lag.add_metric([settings.kafka_consumer_group, settings.kafka_topic], seen.kafka.lag)
        dlq = GaugeMetricFamily("crypto_dlq_messages", "Messages in the dead-letter topic.")
        dlq.add_metric([], seen.kafka.messages.get(settings.kafka_dlq_topic, 0))
        families += [messages, lag, dlq]
    if seen.mongo is not None:
        documents = GaugeMetricFamily(
            "crypto_mongo_documents", "Documents in MongoDB.", labels=["collection"]
        )
        name = f"{settings.mongo_database}.{settings.mongo_collection}"
        documents.add_metric([name], seen.mongo.documents)
        families += [documents, *_completeness_families(seen.mongo)]
    if seen.up("cassandra"):
        families += _cassandra_families(seen)
    return families


def _completeness_families(reading: MongoReading) -> list[Metric]:
    """Offsets lost to retention, and the open gaps with the seconds of data they miss."""
    lost = CounterMetricFamily(
        "crypto_retention_lost_offsets",
        "Kafka offsets removed by retention before the consumer read them.",
        labels=["consumer"],
    )
    for consumer, count in sorted(reading.lost_offsets.items()):
        lost.add_metric([consumer], float(count))
    gaps = GaugeMetricFamily(
        "crypto_gaps_open", "Open gaps per source and coin.", labels=["source", "symbol"]
    )
    missing = GaugeMetricFamily(
        "crypto_gap_missing_seconds",
        "Seconds of data the open gaps miss, per source and coin.",
        labels=["source", "symbol"],
    )
    totals: dict[tuple[str, str], tuple[int, float]] = {}
    for gap in reading.open_gaps:
        count, seconds = totals.get((gap.source, gap.symbol), (0, 0.0))
        totals[(gap.source, gap.symbol)] = (count + 1, seconds + (gap.end_ms - gap.start_ms) / 1000)
    for labels, (count, seconds) in sorted(totals.items()):
        gaps.add_metric(list(labels), count)
        missing.add_metric(list(labels), seconds)
    return [lost, gaps, missing]


def _cassandra_families(seen: Observation) -> list[Metric]:
    age = GaugeMetricFamily(
        "crypto_tick_age_seconds", "Age of the newest tick per coin.", labels=["symbol"]
    )
    price = GaugeMetricFamily(
        "crypto_latest_price", "The newest price per coin.", labels=["symbol"]
    )
    for row in seen.latest_prices:
        age.add_metric([row.symbol], (seen.taken_at - utc(row.event_time)).total_seconds())
        price.add_metric([row.symbol], row.price)
    window_end = GaugeMetricFamily(
        "crypto_aggregate_window_end_seconds",
        "End of the newest aggregate window per coin (epoch seconds).",
        labels=["symbol"],
    )
    for row in seen.latest_aggregates:
        window_end.add_metric([row.symbol], utc(row.window_end).timestamp())
    return [age, price, window_end]


def exposition(requests: RequestMetrics, seen: Observation, settings: Settings) -> bytes:
    """The Prometheus text of one scrape: the platform's state, then the request metrics."""
    platform = CollectorRegistry(auto_describe=False)
    platform.register(_Families(platform_families(seen, settings)))
    return generate_latest(platform) + generate_latest(requests.registry)


__all__ = ["RequestMetrics", "exposition", "platform_families"]
