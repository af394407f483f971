"""The clients a report or check reads through, each opened on first use and closed once.

The CLI opens them with `open_stores(settings)`; Dagster hands in the clients its
resources opened for the run (`Stores(settings, mongo=..., ...)`), so assets and checks
of one run share them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from cassandra.cluster import Session
from kafka import KafkaAdminClient, KafkaConsumer
from pymongo import MongoClient
from pymongo.collection import Collection

from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra, mongo
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.streaming.topics import admin_client

T = TypeVar("T")


class Lazy(Generic[T]):
    """A client opened on the first call and closed by `close()` only if it was opened."""

    def __init__(self, open_: Callable[[], T], close: Callable[[T], None]) -> None:
        self._open, self._close = open_, close
        self._value: T | None = None

    def __call__(self) -> T:
        if self._value is None:
            self._value = self._open()
        return self._value

    def close(self) -> None:
        if self._value is not None:
            value, self._value = self._value, None
            self._close(value)


@dataclass(frozen=True)
class KafkaClients:
    """A consumer (offsets, offsets by time) and an admin client (group offsets)."""

    consumer: KafkaConsumer
    admin: KafkaAdminClient

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def open_mongo(settings: Settings) -> MongoClient:
    return mongo.connect(settings)


def open_cassandra(settings: Settings) -> Session:
    return cassandra.connect(settings)[1]


def close_cassandra(session: Session) -> None:
    session.cluster.shutdown()


def open_kafka(settings: Settings) -> KafkaClients:
    consumer = KafkaConsumer(
        **kafka_client_options(settings),
        client_id="crypto-platform-reports",
        enable_auto_commit=False,
    )
    return KafkaClients(consumer, admin_client(settings))


@dataclass
class Stores:
    """Settings plus a getter per system; each getter returns the same client every time."""

    settings: Settings
    mongo: Callable[[], MongoClient]
    cassandra: Callable[[], Session]
    kafka: Callable[[], KafkaClients]

    @property
    def prices(self) -> Collection:
        """MongoDB crypto.prices (names from the settings)."""
        return mongo.prices_collection(self.mongo(), self.settings)


@contextlib.contextmanager
def open_stores(settings: Settings) -> Iterator[Stores]:
    """Stores whose clients open lazily and all close when the block ends."""
    clients = (
        Lazy(lambda: open_mongo(settings), MongoClient.close),
        Lazy(lambda: open_cassandra(settings), close_cassandra),
        Lazy(lambda: open_kafka(settings), KafkaClients.close),
    )
    try:
        yield Stores(settings, *clients)
    finally:
        for client in clients:
            client.close()
