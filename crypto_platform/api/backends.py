"""Readings of Kafka and MongoDB for `/health`, `/pipeline` and `/metrics`.

One Kafka admin client and one MongoDB client per app, opened on first use and kept: a
burst of requests opens no broker connection (observation.py also caches the readings).
A Kafka client that failed is closed and the next reading opens a fresh one, so a broker
that went away never leaves a stale client behind. Calls block: run them in a thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from crypto_platform.api.errors import BackendUnavailable
from crypto_platform.api.reasons import reason
from crypto_platform.completeness.gaps import Gap, from_document, recorded
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo
from crypto_platform.streaming.kafka_options import kafka_client_options

BOOTSTRAP_TIMEOUT_MS = 2000
REQUEST_TIMEOUT_MS = 3000
MONGO_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class MongoReading:
    """Ticks stored, offsets lost to retention per consumer, and the open gaps."""

    documents: int
    lost_offsets: dict[str, int]
    open_gaps: list[Gap]


@dataclass(frozen=True)
class KafkaReading:
    """Messages per topic (sum of end offsets) and the sink group's lag on the tick topic."""

    messages: dict[str, int]
    lag: int


class _AdminClient(KafkaAdminClient):
    """An admin client that stops its IO thread when it cannot start.

    kafka-python 3.0 leaves a failed client's IO thread running: one leaked thread per
    attempt while Kafka is down.
    """

    def __init__(self, settings: Settings) -> None:
        try:
            # A reading answers within seconds: shorter waits than the platform's clients.
            super().__init__(
                **{
                    **kafka_client_options(settings),
                    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
                    "request_timeout_ms": REQUEST_TIMEOUT_MS,
                },
                client_id="crypto-platform-api",
            )
        except KafkaError:
            if hasattr(self, "_net"):  # its IO thread had started
                self._closed = False  # close() skips a client whose start did not finish
                self.close()
            raise


class Backends:
    """Kafka and MongoDB as the API sees them; each failure is `BackendUnavailable`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin: KafkaAdminClient | None = None
        self._mongo: MongoClient | None = None
        self._kafka_lock = threading.Lock()  # the admin client is not for concurrent callers
        self._mongo_lock = threading.Lock()

    def kafka(self) -> KafkaReading:
        with self._kafka_lock:
            if self._admin is None:
                try:
                    self._admin = _AdminClient(self.settings)
                except KafkaError as error:
                    raise _kafka_down(error, BOOTSTRAP_TIMEOUT_MS) from error
            try:
                return self._read_kafka(self._admin)
            except KafkaError as error:
                self._close_kafka()
                raise _kafka_down(error, REQUEST_TIMEOUT_MS) from error

    def _read_kafka(self, admin: KafkaAdminClient) -> KafkaReading:
        s = self.settings
        partitions = [
            TopicPartition(topic["name"], p["partition_index"])
            for topic in admin.describe_topics([s.kafka_topic, s.kafka_dlq_topic])
            for p in topic["partitions"]
        ]
        ends = admin.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.LATEST))
        committed = admin.list_group_offsets(s.kafka_consumer_group).get(s.kafka_consumer_group, {})
        messages = {s.kafka_topic: 0, s.kafka_dlq_topic: 0}
        lag = 0
        for tp, end in ends.items():
            messages[tp.topic] = messages.get(tp.topic, 0) + end.offset
            if tp.topic == s.kafka_topic:
                done = committed.get(tp)
                lag += end.offset - (done.offset if done is not None and done.offset >= 0 else 0)
        return KafkaReading(messages, lag)

    def mongo(self) -> MongoReading:
        """The tick count (the collection's own, not a scan) and the completeness ledgers.

        The ledgers are small (a document per gap or per range lost), and only the open
        gaps are read.
        """
        try:
            client, s = self._mongo_client(), self.settings
            documents = mongo.prices_collection(client, s).estimated_document_count()
            lost: dict[str, int] = {}
            for loss in mongo.data_loss_collection(client, s).find({}, {"consumer": 1, "count": 1}):
                lost[loss["consumer"]] = lost.get(loss["consumer"], 0) + int(loss["count"])
            gaps = list(mongo.gaps_collection(client, s).find({"status": "open"}, {"_id": 0}))
        except PyMongoError as error:
            detail = reason(error, timeout_s=MONGO_TIMEOUT_MS / 1000)
            raise BackendUnavailable("mongodb", detail) from error
        return MongoReading(documents, lost, [from_document(gap) for gap in gaps])

    def gaps(self, symbol: str, since_ms: int, until_ms: int) -> list[Gap]:
        """The recorded gaps of a coin that overlap [since, until)."""
        try:
            ledger = mongo.gaps_collection(self._mongo_client(), self.settings)
            return [g for g in recorded(ledger, since_ms, until_ms) if g.symbol == symbol]
        except PyMongoError as error:
            detail = reason(error, timeout_s=MONGO_TIMEOUT_MS / 1000)
            raise BackendUnavailable("mongodb", detail) from error

    def _mongo_client(self) -> MongoClient:
        with self._mongo_lock:
            if self._mongo is None:
                self._mongo = mongo.connect(self.settings, timeout_ms=MONGO_TIMEOUT_MS)
            return self._mongo

    def _close_kafka(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def close(self) -> None:
        with self._kafka_lock:
            self._close_kafka()
        if self._mongo is not None:
            self._mongo.close()


def _kafka_down(error: KafkaError, timeout_ms: int) -> BackendUnavailable:
    return BackendUnavailable("kafka", reason(error, timeout_s=timeout_ms / 1000))
