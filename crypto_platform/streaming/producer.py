"""The Kafka producer: ticks from a source to `crypto.prices`, keyed by symbol.

acks=all and idempotence (the broker supports it); batching with a short linger; a
delivery that fails after kafka-python's own retries is counted and sent again (the tick's
identity makes that harmless downstream); every exit path flushes.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError

from crypto_platform.settings import Settings
from crypto_platform.sources import PriceSource
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.streaming.progress import Progress
from crypto_platform.streaming.pump import pump
from crypto_platform.ticks import Tick

log = logging.getLogger(__name__)


@dataclass
class ProducerStats:
    """What a producer run did."""

    sent: int = 0
    failed: int = 0
    resent: int = 0


class TickProducer:
    """A KafkaProducer configured for ticks, with delivery failures kept for a resend."""

    def __init__(self, settings: Settings, *, linger_ms: int = 5, batch_size: int = 256 * 1024):
        self.topic = settings.kafka_topic
        self.stats = ProducerStats()
        self._failed: list[Tick] = []
        self._lock = threading.Lock()
        self._producer = KafkaProducer(
            **kafka_client_options(settings),
            client_id="crypto-producer",
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            batch_size=batch_size,
        )

    def send(self, tick: Tick) -> None:
        future = self._producer.send(self.topic, key=tick.symbol.encode(), value=tick.to_json())
        future.add_errback(self._on_failure, tick)
        self.stats.sent += 1

    def _on_failure(self, tick: Tick, error: Exception) -> None:
        with self._lock:
            self.stats.failed += 1
            self._failed.append(tick)
        if self.stats.failed <= 3 or self.stats.failed % 1000 == 0:
            log.warning("delivery of %s failed (%s); it will be sent again", tick.identity, error)

    def resend_failed(self) -> int:
        """Send again every tick whose delivery failed; return how many."""
        with self._lock:
            failed, self._failed = self._failed, []
        for tick in failed:
            self.send(tick)
        self.stats.resent += len(failed)
        return len(failed)

    def flush(self, timeout: float | None = 30.0) -> None:
        self._producer.flush(timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is buffered (resending failures once), then close."""
        try:
            self.flush(timeout)
            if self.resend_failed():
                self.flush(timeout)
        except KafkaError as error:
            log.error("flush on close failed: %s", error)
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
        producer.resend_failed()

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
