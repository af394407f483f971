"""The dead-letter topic: a bad message keeps its bytes; headers say why and where from.

kafka-python's `flush` does not raise when a send failed, so every dead letter's future is
checked before the sink may commit. A record the dead-letter topic refuses as too large
(the original plus its headers) is stored as a truncated copy: its first
`TRUNCATED_BYTES` bytes, with the original size in `dlq.truncated` and the reason
saying so. Any other failure raises `DeadLetterFailed`, so nothing is committed and the
messages are redelivered.
"""

from __future__ import annotations

import logging

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import MessageSizeTooLargeError
from kafka.producer.future import FutureRecordMetadata

from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.streaming.kafka_options import kafka_client_options

log = logging.getLogger(__name__)

REASON = "dlq.reason"
ORIGIN_TOPIC = "dlq.topic"
ORIGIN_PARTITION = "dlq.partition"
ORIGIN_OFFSET = "dlq.offset"
TRUNCATED = "dlq.truncated"
TRUNCATED_BYTES = 1024


class DeadLetterFailed(PlatformError):
    """A dead letter was not acknowledged: the sink must not commit its offset."""


class DeadLetters:
    """Sends rejected records to `crypto.prices.dlq` (acks=all); `flush` checks each one."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.kafka_dlq_topic
        self.truncated = 0
        self._client_options = kafka_client_options(settings)
        self._pending: list[tuple[FutureRecordMetadata, ConsumerRecord, str]] = []
        # Opened at the first dead letter: most runs never send one.
        self._opened: KafkaProducer | None = None

    @property
    def _producer(self) -> KafkaProducer:
        if self._opened is None:
            self._opened = self._open()
        return self._opened

    def _open(self) -> KafkaProducer:
        return KafkaProducer(
            **self._client_options,
            client_id="crypto-dlq",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )

    def send(self, record: ConsumerRecord, reason: str) -> None:
        """Queue a dead letter (one over the client's request size goes truncated at once)."""
        try:
            future = self._send(record, reason)
        except MessageSizeTooLargeError:
            future = self._send(record, reason, truncated=True)
        self._pending.append((future, record, reason))

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every dead letter is acknowledged (before the sink commits).

        A size refusal leaves kafka-python's idempotent producer failing every later
        send, so the failed ones are sent again one by one through a fresh producer,
        truncated only if still too large. Raises `DeadLetterFailed` otherwise.
        """
        if not self._pending:
            return
        self._producer.flush(timeout=timeout)
        pending, self._pending = self._pending, []
        failed = [(record, reason) for future, record, reason in pending if future.failed()]
        for future, record, _ in pending:
            if future.failed() and not isinstance(future.exception, MessageSizeTooLargeError):
                raise self._failure(record, future.exception)
        for record, reason in failed:
            if not (
                self._deliver(record, reason, timeout, truncated=False)
                or self._deliver(record, reason, timeout, truncated=True)
            ):
                raise self._failure(record, "too large even truncated")

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close(timeout=10)
            self._opened = None

    def _deliver(
        self, record: ConsumerRecord, reason: str, timeout: float, *, truncated: bool
    ) -> bool:
        """Through a fresh producer: True once acknowledged, False if refused as too large."""
        self.close()
        try:
            future = self._send(record, reason, truncated=truncated)
        except MessageSizeTooLargeError:
            return False
        self._producer.flush(timeout=timeout)
        if future.failed() and not isinstance(future.exception, MessageSizeTooLargeError):
            raise self._failure(record, future.exception)
        return bool(future.succeeded())

    def _failure(self, record: ConsumerRecord, error: object) -> DeadLetterFailed:
        return DeadLetterFailed(
            f"dead letter for {record.topic}[{record.partition}]@{record.offset} was not "
            f"stored in {self.topic}: {error}; nothing committed, it will be redelivered"
        )

    def _send(
        self, record: ConsumerRecord, reason: str, *, truncated: bool = False
    ) -> FutureRecordMetadata:
        size = len(record.value or b"")
        key, value = record.key, record.value
        if truncated:
            self.truncated += 1
            log.warning(
                "dead letter from %s[%d]@%d is too large for %s (%d bytes): storing its first %d",
                record.topic, record.partition, record.offset, self.topic, size, TRUNCATED_BYTES,
            )  # fmt: skip
            reason = (
                f"{reason}; value truncated to its first {TRUNCATED_BYTES} of {size} bytes "
                f"(too large for {self.topic})"
            )
            key, value = (key or b"")[:TRUNCATED_BYTES] or None, (value or b"")[:TRUNCATED_BYTES]
        headers = [
            (REASON, reason.encode()),
            (ORIGIN_TOPIC, record.topic.encode()),
            (ORIGIN_PARTITION, str(record.partition).encode()),
            (ORIGIN_OFFSET, str(record.offset).encode()),
        ]
        if truncated:
            headers.append((TRUNCATED, str(size).encode()))
        try:
            future: FutureRecordMetadata = self._producer.send(
                self.topic, key=key, value=value, headers=headers
            )
        except MessageSizeTooLargeError:
            if truncated:
                raise self._failure(record, "too large even truncated") from None
            raise
        return future
