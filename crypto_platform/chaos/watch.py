"""What the run sees while it runs: whether ticks flow end to end, counts and rates, lag.

Every read tolerates the store being down (that is the point of the run): it answers
None, and the client is opened afresh on the next call, so a restarted server is seen
at once rather than after the driver's own reconnection backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from cassandra.cluster import Session
from kafka.errors import KafkaError
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from crypto_platform.reports.stores import KafkaClients, Lazy, close_cassandra, open_kafka
from crypto_platform.reports.throughput import consumer_lag, end_offsets
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra, cassandra_queries, mongo, mongo_queries

log = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C")
PROGRESS_EVERY_S = 10.0


class Watch:
    """Short-timeout clients of the three stores, reopened after any failure."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mongo = Lazy(lambda: mongo.connect(settings, timeout_ms=1500), MongoClient.close)
        self._cassandra = Lazy(
            lambda: cassandra.connect(settings, connect_timeout=2.0)[1], close_cassandra
        )
        self._kafka = Lazy(lambda: open_kafka(settings), KafkaClients.close)
        self._last: tuple[float, int, int] | None = None
        self._last_report = 0.0

    @staticmethod
    def _read(client: Lazy[C], read: Callable[[C], T], failures: type[BaseException]) -> T | None:
        try:
            return read(client())
        except failures:
            client.close()
            return None

    def _read_mongo(self, read: Callable[[MongoClient], T]) -> T | None:
        return self._read(self._mongo, read, PyMongoError)

    def _read_cassandra(self, read: Callable[[Session], T]) -> T | None:
        # The driver raises many kinds of errors while a node is down.
        return self._read(self._cassandra, read, Exception)

    def _read_kafka(self, read: Callable[[KafkaClients], T]) -> T | None:
        return self._read(self._kafka, read, KafkaError)

    def in_mongo_since(self, moment_ms: int) -> bool | None:
        """Whether MongoDB holds a tick ingested at or after `moment_ms` (None: unreachable)."""
        return self._read_mongo(
            lambda client: mongo_queries.ingested_since(
                mongo.prices_collection(client, self.settings), moment_ms
            )
        )

    def newest_in_cassandra(self) -> int | None:
        """Ingest time (ms) of the newest tick in latest_prices (0: none yet; None: unreachable)."""
        keyspace = self.settings.cassandra_keyspace
        return self._read_cassandra(
            lambda session: cassandra_queries.newest_ingest_ms(session, keyspace) or 0
        )

    def flowing_since(self, moment_ms: int) -> bool:
        """Both MongoDB and Cassandra hold a tick ingested at or after `moment_ms`."""
        if not self.in_mongo_since(moment_ms):
            return False
        newest = self.newest_in_cassandra()
        return newest is not None and newest >= moment_ms

    def wait_flowing(
        self, moment_ms: int, timeout_s: float, tick: Callable[[], None]
    ) -> float | None:
        """Seconds from `moment_ms` until ticks flow end to end again (None: not within timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.flowing_since(moment_ms):
                return round(time.time() - moment_ms / 1000, 1)
            tick()
            time.sleep(0.25)
        return None

    def produced(self) -> int | None:
        """Messages in the tick topic (acknowledged by the broker)."""
        return self._read_kafka(
            lambda kafka: sum(end_offsets(kafka, self.settings.kafka_topic).values())
        )

    def sink_lag(self) -> int | None:
        return self._read_kafka(lambda kafka: consumer_lag(kafka, self.settings))

    def stored_in_mongo(self) -> int | None:
        return self._read_mongo(
            lambda client: mongo.prices_collection(client, self.settings).estimated_document_count()
        )

    def report(self, extra: Callable[[], str]) -> None:
        """Every PROGRESS_EVERY_S: produced and stored counts, rates, Cassandra's delay."""
        now = time.monotonic()
        if now - self._last_report < PROGRESS_EVERY_S:
            return
        self._last_report = now
        produced, stored = self.produced(), self.stored_in_mongo()
        newest = self.newest_in_cassandra()
        rates = ""
        if self._last is not None and produced is not None and stored is not None:
            seconds = now - self._last[0]
            rates = (
                f" ({(produced - self._last[1]) / seconds:.0f}/s produced, "
                f"{(stored - self._last[2]) / seconds:.0f}/s stored)"
            )
        if produced is not None and stored is not None:
            self._last = (now, produced, stored)
        delay = {None: "unreachable", 0: "empty"}.get(
            newest, f"{time.time() - (newest or 0) / 1000:.1f}s behind"
        )
        log.info(
            "produced %s, in MongoDB %s%s; Cassandra latest_prices %s; %s",
            produced, stored, rates, delay, extra(),
        )  # fmt: skip

    def close(self) -> None:
        for client in (self._mongo, self._cassandra, self._kafka):
            client.close()
