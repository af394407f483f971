"""Kafka topics: create the price and dead-letter topics, and describe what a topic holds."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from crypto_platform.settings import Settings


def admin_client(settings: Settings, **config: object) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id="crypto-platform", **config
    )


def ensure_topics(settings: Settings) -> list[str]:
    """Create `crypto.prices` (N partitions, a retention) and its DLQ unless they exist."""
    retention = {"retention.ms": str(settings.kafka_retention_ms)}
    wanted = [
        NewTopic(settings.kafka_topic, settings.kafka_partitions, 1, topic_configs=retention),
        NewTopic(settings.kafka_dlq_topic, 1, 1, topic_configs=retention),
    ]
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            # Another process may create them meanwhile: that is fine too.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()
    return [topic.name for topic in wanted]
