"""The Kafka producer: ticks from a source to `crypto.prices`, keyed by symbol.

acks=all and idempotence (the broker supports it), so kafka-python's own retries keep
each symbol's order; batching with a short linger. Retries are bounded by kafka-python's
`delivery_timeout_ms`: a tick still not delivered by then is counted and raised as
`DeliveryFailed` (never resent out of order, never only logged). Every exit path flushes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError

from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.sources import PriceSource
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.streaming.partitioner import CachedKeyPartitioner
from crypto_platform.streaming.progress import Progress
from crypto_platform.streaming.pump import pump
from crypto_platform.ticks import Tick

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_MS = 120_000


class DeliveryFailed(PlatformError):
    """Ticks were not acknowledged within the delivery timeout: they are not in Kafka."""


@dataclass
class ProducerStats:
    """What a producer run did."""

    sent: int = 0
    failed: int = 0


class TickProducer:
    """A KafkaProducer configured for ticks; `check` raises once a delivery has failed."""

    def __init__(
        self,
        settings: Settings,
        *,
        linger_ms: int = 5,
        batch_size: int = 256 * 1024,
        delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
    ):
        self.topic = settings.kafka_topic
        self.stats = ProducerStats()
        self._first_error: tuple[str, Exception] | None = None
        self._lock = threading.Lock()
        self._producer = KafkaProducer(
            **kafka_client_options(settings),
            client_id="crypto-producer",
            acks="all",
            enable_idempotence=True,
            partitioner=CachedKeyPartitioner(),
            linger_ms=linger_ms,
            batch_size=batch_size,
            delivery_timeout_ms=delivery_timeout_ms,
        )

    def send(self, tick: Tick) -> None:
        """Queue `tick`; one too large to ever be accepted fails at once (`DeliveryFailed`)."""
        self.stats.sent += 1
        try:
            future = self._producer.send(self.topic, key=tick.symbol.encode(), value=tick.to_json())
        except MessageSizeTooLargeError as error:
            self._on_failure(tick, error)
            self.check()
            return
        future.add_errback(self._on_failure, tick)

    def _on_failure(self, tick: Tick, error: Exception) -> None:
        with self._lock:
            self.stats.failed += 1
            if self._first_error is None:
                self._first_error = (tick.identity, error)
        if self.stats.failed <= 3:
            log.error("delivery of %s failed: %s", tick.identity, error)

    def check(self) -> None:
        """Raise `DeliveryFailed` if any tick sent so far failed to be delivered."""
        with self._lock:
            if self._first_error is None:
                return
            identity, error = self._first_error
            failed = self.stats.failed
        raise DeliveryFailed(
            f"{failed} of {self.stats.sent} ticks were not delivered to {self.topic} "
            f"(first: {identity}: {error})"
        )

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait for every buffered tick, then raise if any delivery failed.

        kafka-python's flush can end early with "Future not done" while it splits and
        retries a refused batch: flush again until `timeout`.
        """
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            try:
                self._producer.flush(timeout=max(0.0, deadline - time.monotonic()))
            except KafkaTimeoutError:
                self.check()  # failed deliveries explain a failed flush best
                raise
            except KafkaError:
                if time.monotonic() >= deadline:
                    self.check()
                    raise
                time.sleep(0.05)
                continue
            break
        self.check()

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is buffered (raising as `flush` does), then close."""
        try:
            self.flush(timeout)
        finally:
            self._producer.close(timeout=timeout)


def run_producer(
    source: PriceSource,
    producer: TickProducer,
    stop: threading.Event,
    *,
    count: int | None = None,
    duration: float | None = None,
    progress: Progress | None = None,
) -> ProducerStats:
    """Publish ticks until `stop`, `count` ticks or `duration` seconds, whichever is first.

    The caller owns `producer` and closes it (that flushes) on every exit path.
    """

    def deliver(batch: list[Tick]) -> None:
        for tick in batch:
            producer.send(tick)
        producer.check()

    def extra() -> dict[str, int]:
        return {
            "skipped": source.stats.skipped,
            "failed_requests": source.stats.failed_requests,
            "delivery_failures": producer.stats.failed,
        }

    pump(
        source,
        deliver,
        stop,
        count=count,
        duration=duration,
        progress=progress or Progress("producer"),
        extra=extra,
    )
    producer.flush()
    return producer.stats
