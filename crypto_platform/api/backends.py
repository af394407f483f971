"""Readings of Kafka and MongoDB for `/health`, `/pipeline` and `/metrics` (taken on request).

Kafka clients are made per reading with short timeouts (a scrape every few seconds is
cheap, and a broker that went away never leaves a stale client behind); the MongoDB
client is kept and fails fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from crypto_platform.api.errors import BackendUnavailable
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.streaming.topics import admin_client

TIMEOUTS_MS = {"bootstrap_timeout_ms": 2000, "request_timeout_ms": 3000}


@dataclass(frozen=True)
class KafkaReading:
    """Messages per topic (sum of end offsets) and the sink group's lag on the tick topic."""

    messages: dict[str, int]
    lag: int


class Backends:
    """Kafka and MongoDB as the API sees them; each failure is `BackendUnavailable`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mongo: MongoClient | None = None

    def kafka(self) -> KafkaReading:
        s = self.settings
        try:
            admin = admin_client(s, **TIMEOUTS_MS)
        except KafkaError as error:
            raise BackendUnavailable("kafka", str(error)) from None
        try:
            consumer = KafkaConsumer(
                **kafka_client_options(s), client_id="crypto-platform-api", **TIMEOUTS_MS
            )
        except KafkaError as error:
            admin.close()
            raise BackendUnavailable("kafka", str(error)) from None
        try:
            partitions = [
                TopicPartition(topic["name"], p["partition_index"])
                for topic in admin.describe_topics([s.kafka_topic, s.kafka_dlq_topic])
                for p in topic["partitions"]
            ]
            ends = consumer.end_offsets(partitions)
            committed = admin.list_group_offsets(s.kafka_consumer_group).get(
                s.kafka_consumer_group, {}
            )
        except KafkaError as error:
            raise BackendUnavailable("kafka", str(error)) from None
        finally:
            consumer.close()
            admin.close()
        messages = {s.kafka_topic: 0, s.kafka_dlq_topic: 0}
        lag = 0
        for tp, end in ends.items():
            messages[tp.topic] = messages.get(tp.topic, 0) + end
            if tp.topic == s.kafka_topic:
                done = committed.get(tp)
                lag += end - (done.offset if done is not None and done.offset >= 0 else 0)
        return KafkaReading(messages, lag)

    def mongo_documents(self) -> int:
        """Documents in the tick collection (the collection's count, not a scan)."""
        if self._mongo is None:
            self._mongo = mongo.connect(self.settings, timeout_ms=2000)
        try:
            return mongo.prices_collection(self._mongo, self.settings).estimated_document_count()
        except PyMongoError as error:
            raise BackendUnavailable("mongodb", str(error).split(",")[0]) from None

    def close(self) -> None:
        if self._mongo is not None:
            self._mongo.close()
