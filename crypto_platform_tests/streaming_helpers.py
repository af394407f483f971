"""What tests read back from the real servers: documents, topic sizes, dead letters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from pymongo import MongoClient

from crypto_platform.settings import Settings
from crypto_platform.streaming.sink import MongoSink, SinkStats, run_sink
from crypto_platform.streaming.topics import read_to_end


def stored_ids(settings: Settings) -> list[str]:
    with MongoClient(settings.mongo_uri) as client:
        collection = client[settings.mongo_database][settings.mongo_collection]
        return [document["_id"] for document in collection.find({}, {"_id": 1})]


def stored_count(settings: Settings) -> int:
    with MongoClient(settings.mongo_uri) as client:
        return client[settings.mongo_database][settings.mongo_collection].count_documents({})


def read_topic(settings: Settings, topic: str) -> list[ConsumerRecord]:
    """Every record of `topic`, from the beginning, without a group."""
    return list(read_to_end(settings, topic, timeout_s=30))


def topic_size(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def create_topic_with_max_message_bytes(settings: Settings, topic: str, max_bytes: int) -> None:
    """A one-partition topic whose broker refuses messages larger than `max_bytes`."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": str(max_bytes)})]
        )
    finally:
        admin.close()


def committed_offsets(settings: Settings) -> dict[int, int | None]:
    """The sink group's committed offset in each partition of the topic."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.kafka_consumer_group,
        enable_auto_commit=False,
    )
    try:
        partitions = consumer.partitions_for_topic(settings.kafka_topic) or set()
        return {p: consumer.committed(TopicPartition(settings.kafka_topic, p)) for p in partitions}
    finally:
        consumer.close()


def committed_total(settings: Settings) -> int:
    """The sink group's committed offsets, summed over the topic's partitions."""
    return sum(offset or 0 for offset in committed_offsets(settings).values())


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def sink_until_idle(settings: Settings, idle_s: float = 2) -> SinkStats:
    """Run a MongoDB sink until the topic has been idle for `idle_s`, then close it."""
    sink = MongoSink(settings)
    try:
        return run_sink(sink, threading.Event(), until_idle=idle_s)
    finally:
        sink.close()
