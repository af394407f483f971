"""The dead-letter topic: a bad message keeps its bytes; headers say why and where from."""

from __future__ import annotations

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from crypto_platform.settings import Settings
from crypto_platform.streaming.kafka_options import kafka_client_options

REASON = "dlq.reason"
ORIGIN_TOPIC = "dlq.topic"
ORIGIN_PARTITION = "dlq.partition"
ORIGIN_OFFSET = "dlq.offset"


class DeadLetters:
    """Sends rejected records to `crypto.prices.dlq` (acks=all) and flushes on demand."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.kafka_dlq_topic
        self._producer = KafkaProducer(
            **kafka_client_options(settings),
            client_id="crypto-dlq",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )

    def send(self, record: ConsumerRecord, reason: str) -> None:
        headers = [
            (REASON, reason.encode()),
            (ORIGIN_TOPIC, record.topic.encode()),
            (ORIGIN_PARTITION, str(record.partition).encode()),
            (ORIGIN_OFFSET, str(record.offset).encode()),
        ]
        self._producer.send(self.topic, key=record.key, value=record.value, headers=headers)

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every dead letter is acknowledged (before the sink commits)."""
        self._producer.flush(timeout=timeout)

    def close(self) -> None:
        self._producer.close(timeout=10)
