"""The Kafka producer: ticks from a source to `crypto.prices`, keyed by symbol.

acks=all and idempotence (the broker supports it), so kafka-python's own retries keep
each symbol's order; batching with a short linger. Retries are bounded by kafka-python's
`delivery_timeout_ms`: a tick still not delivered by then is counted and raised as
`DeliveryFailed` (never only logged). Every exit path flushes.

A broker that lost its tail (the local one does on a SIGTERM restart) answers with
`OutOfOrderSequenceNumberError`. For a live source the unacknowledged ticks exist nowhere
else. After such an error the producer flushes its KafkaProducer (every tick it held is
then acknowledged or back through the errback), closes it, opens a new one (a new producer
id) and resends, in their original order and before any new tick, the ticks that failed
and those sent in the last `RETAIN_ACKED_S` seconds (the tail such a broker loses was
acknowledged); each key's last copies stay in order. The topic may then hold a tick twice,
the stores once (by identity). Only a failed resend stops the producer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer
from kafka.errors import (
    InvalidProducerEpochError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumberError,
    UnknownProducerIdError,
)

from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.sources import PriceSource
from crypto_platform.streaming.ack_ledger import AckLedger
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.streaming.partitioner import CachedKeyPartitioner
from crypto_platform.streaming.progress import Progress
from crypto_platform.streaming.pump import pump
from crypto_platform.ticks import Tick

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_MS = 120_000
# The broker's producer state no longer matches ours: resend from the oldest unacknowledged.
RESET_ERRORS = (OutOfOrderSequenceNumberError, UnknownProducerIdError, InvalidProducerEpochError)
# The local broker saves its state about once a second; a restart loses what came after.
RETAIN_ACKED_S = 5.0
PRUNE_EVERY = 1024  # sends between two looks at the tail's front: none per tick


class DeliveryFailed(PlatformError):
    """Ticks were not acknowledged within the delivery timeout: they are not in Kafka."""


@dataclass
class ProducerStats:
    """What a producer run did."""

    sent: int = 0
    failed: int = 0
    resent: int = 0
    resets: int = 0


class TickProducer:
    """A KafkaProducer configured for ticks; `check` raises once a delivery has failed.

    `ledger`: a file that gets a line for each acknowledged tick (see `ack_ledger`).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        linger_ms: int = 5,
        batch_size: int = 256 * 1024,
        delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
        ledger: Path | None = None,
    ):
        self.topic = settings.kafka_topic
        self.stats = ProducerStats()
        self._first_error: tuple[str, Exception] | None = None
        self._lock = threading.Lock()
        self._ledger = AckLedger(ledger) if ledger is not None else None
        self._options = {
            **kafka_client_options(settings),
            "client_id": "crypto-producer",
            "acks": "all",
            "enable_idempotence": True,
            "partitioner": CachedKeyPartitioner(),
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "delivery_timeout_ms": delivery_timeout_ms,
        }
        # (number, tick) of the ticks sent within RETAIN_ACKED_S, in send order, touched by
        # this thread only; marks: (number, when sent) every PRUNE_EVERY ticks. Ticks that
        # failed while a reset was due come back through the errback, into `_unsent`.
        # No futures are kept: holding them slowed sending by a sixth.
        self._tail: deque[tuple[int, Tick]] = deque()
        self._marks: deque[tuple[int, float]] = deque()
        self._unsent: list[tuple[int, Tick]] = []
        self._number = 0
        self._generation = 0
        self._reset: Exception | None = None
        self._producer = KafkaProducer(**self._options)

    def send(self, tick: Tick) -> None:
        """Queue `tick`; one too large to ever be accepted fails at once (`DeliveryFailed`)."""
        if self._reset is not None:
            self._resend()
        self.stats.sent += 1
        self._number = number = self._number + 1
        if not number % PRUNE_EVERY:
            self._prune()
        self._tail.append((number, tick))
        self._send(number, tick, False)

    def _send(self, number: int, tick: Tick, resend: bool) -> None:
        try:
            future = self._producer.send(self.topic, key=tick.symbol.encode(), value=tick.to_json())
        except MessageSizeTooLargeError as error:
            self._on_failure(number, tick, self._generation, resend, error)
            self.check()
            return
        future.add_errback(self._on_failure, number, tick, self._generation, resend)
        if self._ledger is not None:
            future.add_callback(self._ledger.acknowledged, tick)

    def _prune(self) -> None:
        """Let go of the ticks sent over RETAIN_ACKED_S ago (failed ones come back)."""
        now = time.monotonic()
        self._marks.append((self._number, now))
        oldest = 0
        while self._marks and self._marks[0][1] < now - RETAIN_ACKED_S:
            oldest = self._marks.popleft()[0]
        tail = self._tail
        while tail and tail[0][0] <= oldest:
            tail.popleft()

    def _on_failure(
        self, number: int, tick: Tick, generation: int, resend: bool, error: Exception
    ) -> None:
        with self._lock:
            if not resend and (
                isinstance(error, RESET_ERRORS)
                or generation < self._generation
                or self._reset is not None
            ):
                if self._reset is None and generation == self._generation:
                    self._reset = error
                self._unsent.append((number, tick))  # resent after the reset
                return
            self.stats.failed += 1
            if self._first_error is None:
                self._first_error = (tick.identity, error)
        if self.stats.failed <= 3:
            log.error("delivery of %s failed: %s", tick.identity, error)

    def _resend(self) -> None:
        """Close the KafkaProducer, open a new one, resend what failed and the recent ticks.

        The old producer is flushed first, so every tick it still held has either been
        acknowledged or come back through the errback.
        """
        old = self._producer
        with contextlib.suppress(KafkaError):
            old.flush(timeout=self._options["delivery_timeout_ms"] / 1000)
        with self._lock:
            self._generation += 1
            reset, self._reset = self._reset, None
            unsent, self._unsent = self._unsent, []
        with contextlib.suppress(KafkaError):
            old.close(timeout=5.0)
        resend = sorted({**dict(unsent), **dict(self._tail)}.items())
        log.warning(
            "the broker lost its producer state (%s): resending %d ticks (%d failed, the rest "
            "sent in the last %.0fs) with a new producer id",
            reset,
            len(resend),
            len(unsent),
            RETAIN_ACKED_S,
        )
        self._producer = KafkaProducer(**self._options)
        self.stats.resets += 1
        self.stats.resent += len(resend)
        for number, tick in resend:
            self._send(number, tick, True)

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
            if self._reset is not None:
                self._resend()
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
            if self._reset is None:
                break
        self.check()

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is buffered (raising as `flush` does), then close (and the ledger)."""
        try:
            self.flush(timeout)
        finally:
            try:
                self._producer.close(timeout=timeout)
            finally:
                if self._ledger is not None:
                    self._ledger.close()


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
            "source_switches": source.stats.switches,
            "delivery_failures": producer.stats.failed,
            "resent": producer.stats.resent,
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
