"""Kafka topics: create the price and dead-letter topics, and describe what a topic holds."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import TopicAlreadyExistsError

from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.streaming.kafka_options import kafka_client_options


def admin_client(settings: Settings, **config: object) -> KafkaAdminClient:
    return KafkaAdminClient(**kafka_client_options(settings), client_id="crypto-platform", **config)


def read_to_end(
    settings: Settings, topic: str, *, timeout_s: float, client_id: str = "crypto-topic-reader"
) -> Iterator[ConsumerRecord]:
    """Every record of `topic`, from its beginning to the end offsets it had when called.

    No group: nothing is committed. Raises `PlatformError` (how far it got) if the reading
    takes over `timeout_s`.
    """
    consumer = KafkaConsumer(
        **kafka_client_options(settings),
        client_id=client_id,
        enable_auto_commit=False,
        max_poll_records=10_000,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        read = 0
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                total = sum(ends.values())
                raise PlatformError(
                    f"reading {topic} took over {timeout_s:.0f}s: the broker served {read:,} of "
                    f"its {total:,} records. A busy or large local broker reads slowly: "
                    "try again when it is idle, or with fewer records"
                )
            for records in consumer.poll(timeout_ms=500).values():
                read += len(records)
                yield from records
    finally:
        consumer.close()


RETENTION = "retention.ms"


def ensure_topics(settings: Settings) -> tuple[list[str], list[str]]:
    """Create `crypto.prices` (N partitions, a retention) and its DLQ unless they exist.

    A topic that exists with another retention gets the configured one (only that key
    changes): a changed CRYPTO_KAFKA_RETENTION_MS must not wait for a topic to be remade.
    Returns the topics' names and those whose retention changed.
    """
    retention = {RETENTION: str(settings.kafka_retention_ms)}
    replicas = settings.kafka_replication_factor
    wanted = [
        NewTopic(
            settings.kafka_topic, settings.kafka_partitions, replicas, topic_configs=retention
        ),
        NewTopic(settings.kafka_dlq_topic, 1, replicas, topic_configs=retention),
    ]
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            # Another process may create them meanwhile: that is fine too.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        changed = _apply_retention(
            admin, [t.name for t in wanted if t.name in existing], retention[RETENTION]
        )
    finally:
        admin.close()
    return [topic.name for topic in wanted], changed


def _apply_retention(admin: KafkaAdminClient, names: list[str], retention_ms: str) -> list[str]:
    """Set `retention.ms` on the topics whose value differs; return their names."""
    if not names:
        return []
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names], config_filter="all"
    )["topic"]
    stale = [n for n in names if described[n].get(RETENTION, {}).get("value") != retention_ms]
    if stale:
        admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, configs={RETENTION: retention_ms})
                for name in stale
            ]
        )
    return stale


@dataclass(frozen=True)
class PartitionInfo:
    """One partition: its end offset and, per consumer group, the committed offset."""

    topic: str
    partition: int
    end_offset: int
    committed: dict[str, int]


def describe(settings: Settings) -> list[PartitionInfo]:
    """Every non-internal topic's partitions, end offsets and each group's lag."""
    admin = admin_client(settings)
    consumer = KafkaConsumer(
        **kafka_client_options(settings),
        client_id="crypto-platform-topics",
        enable_auto_commit=False,
    )
    try:
        names = sorted(name for name in admin.list_topics() if not name.startswith("__"))
        partitions = [
            TopicPartition(topic["name"], p["partition_index"])
            for topic in admin.describe_topics(names)
            for p in topic["partitions"]
        ]
        ends = consumer.end_offsets(partitions) if partitions else {}
        groups = sorted(group["group_id"] for group in admin.list_groups())
        committed: dict[TopicPartition, dict[str, int]] = {tp: {} for tp in partitions}
        for group in groups:
            for tp, offset in admin.list_group_offsets(group).get(group, {}).items():
                if tp in committed and offset.offset >= 0:
                    committed[tp][group] = offset.offset
    finally:
        consumer.close()
        admin.close()
    return [
        PartitionInfo(tp.topic, tp.partition, ends[tp], committed[tp])
        for tp in sorted(partitions, key=lambda tp: (tp.topic, tp.partition))
    ]
