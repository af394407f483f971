"""One resource per external system. Unset fields fall back to the `CRYPTO_*` settings.

Settings are read when a run uses the resource, never when the definitions load.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
from cassandra.cluster import Session
from pydantic import PrivateAttr
from pymongo import MongoClient

from crypto_platform.reports import stores
from crypto_platform.settings import Settings, load_settings
from crypto_platform.sources import PriceSource, build_source


class _SettingsResource(dg.ConfigurableResource):
    """A resource whose set fields override settings: `SETTINGS` maps field to setting."""

    SETTINGS: ClassVar[dict[str, str]] = {}

    def overrides(self) -> dict[str, Any]:
        return {setting: getattr(self, field) for field, setting in self.SETTINGS.items()}


def settings_for(*resources: _SettingsResource) -> Settings:
    """The settings with every set field of `resources` applied."""
    merged: dict[str, Any] = {}
    for resource in resources:
        merged.update(
            {key: value for key, value in resource.overrides().items() if value is not None}
        )
    return load_settings(**merged)


class _ClientResource(_SettingsResource):
    """A resource that hands out one client per run: opened on first use, closed at the end.

    Assets and checks of the same run that use the resource share the client.
    """

    _client: stores.Lazy[Any] | None = PrivateAttr(default=None)

    def _open(self, settings: Settings) -> Any:
        raise NotImplementedError

    def _close(self, client: Any) -> None:
        raise NotImplementedError

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = stores.Lazy(lambda: self._open(settings_for(self)), self._close)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()

    def client(self) -> Any:
        """The run's client (opened now if this is the first use)."""
        if self._client is None:  # used outside a run (e.g. built by hand in a test)
            self._client = stores.Lazy(lambda: self._open(settings_for(self)), self._close)
        return self._client()


def stores_for(
    *,
    kafka: KafkaResource | None = None,
    mongo: MongoResource | None = None,
    cassandra: CassandraResource | None = None,
) -> stores.Stores:
    """The reports' view of the stores, through the run's shared clients.

    Each asset passes the resources it asks for; a store it did not ask for is a
    programming error, named when first used.
    """
    asked = [resource for resource in (kafka, mongo, cassandra) if resource is not None]
    return stores.Stores(
        settings_for(*asked),
        _client_of(mongo, "mongo"),
        _client_of(cassandra, "cassandra"),
        _client_of(kafka, "kafka"),
    )


def _client_of(resource: _ClientResource | None, key: str) -> Callable[[], Any]:
    if resource is not None:
        return resource.client

    def not_asked_for() -> Any:
        raise RuntimeError(f"this asset reads the {key!r} store without asking for its resource")

    return not_asked_for


class KafkaResource(_ClientResource):
    """The Kafka cluster and the names of the tick topics and the sink's group."""

    bootstrap_servers: str | None = None
    topic: str | None = None
    dlq_topic: str | None = None
    consumer_group: str | None = None

    SETTINGS: ClassVar[dict[str, str]] = {
        "bootstrap_servers": "kafka_bootstrap_servers",
        "topic": "kafka_topic",
        "dlq_topic": "kafka_dlq_topic",
        "consumer_group": "kafka_consumer_group",
    }

    def _open(self, settings: Settings) -> stores.KafkaClients:
        return stores.open_kafka(settings)

    def _close(self, client: stores.KafkaClients) -> None:
        client.close()


class MongoResource(_ClientResource):
    """The MongoDB deployment holding the raw ticks."""

    uri: str | None = None
    database: str | None = None
    collection: str | None = None

    SETTINGS: ClassVar[dict[str, str]] = {
        "uri": "mongo_uri",
        "database": "mongo_database",
        "collection": "mongo_collection",
    }

    def _open(self, settings: Settings) -> MongoClient:
        return stores.open_mongo(settings)

    def _close(self, client: MongoClient) -> None:
        client.close()


class CassandraResource(_ClientResource):
    """The Cassandra cluster holding prices and aggregates."""

    hosts: list[str] | None = None
    port: int | None = None
    protocol_version: int | None = None
    keyspace: str | None = None
    # Where the storage report asks a node without size tables (the local 2.1) over JMX.
    jmx_port: int | None = None

    SETTINGS: ClassVar[dict[str, str]] = {
        "hosts": "cassandra_hosts",
        "port": "cassandra_port",
        "protocol_version": "cassandra_protocol_version",
        "keyspace": "cassandra_keyspace",
        "jmx_port": "cassandra_jmx_port",
    }

    def _open(self, settings: Settings) -> Session:
        return stores.open_cassandra(settings)

    def _close(self, client: Session) -> None:
        stores.close_cassandra(client)


class SparkResource(_SettingsResource):
    """Where the Spark driver connects: `local[*]` here, `spark://host:7077` on a cluster."""

    master: str | None = None
    driver_memory: str | None = None

    SETTINGS: ClassVar[dict[str, str]] = {
        "master": "spark_master",
        "driver_memory": "spark_driver_memory",
    }


class PriceSourceResource(_SettingsResource):
    """Which source the producer reads, for which symbols, how often."""

    source: str | None = None
    symbols: list[str] | None = None
    interval_s: float = 2.0
    # Simulated and replay sources: ticks per second in all (default CRYPTO_SIMULATED_RATE).
    rate: float | None = None
    seed: int = 42
    replay_file: str | None = None

    SETTINGS: ClassVar[dict[str, str]] = {
        "source": "source", "symbols": "symbols", "rate": "simulated_rate",
    }  # fmt: skip

    def build(self, settings: Settings) -> PriceSource:
        return build_source(
            settings,
            interval=self.interval_s,
            rate=settings.simulated_rate,
            seed=self.seed,
            replay_file=Path(self.replay_file) if self.replay_file else None,
        )
