"""One resource per external system. Unset fields fall back to the `CRYPTO_*` settings.

Settings are read when a run uses the resource, never when the definitions load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import dagster as dg

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


class KafkaResource(_SettingsResource):
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


class MongoResource(_SettingsResource):
    """The MongoDB deployment holding the raw ticks."""

    uri: str | None = None
    database: str | None = None
    collection: str | None = None

    SETTINGS: ClassVar[dict[str, str]] = {
        "uri": "mongo_uri",
        "database": "mongo_database",
        "collection": "mongo_collection",
    }


class CassandraResource(_SettingsResource):
    """The Cassandra cluster holding prices and aggregates."""

    hosts: list[str] | None = None
    port: int | None = None
    protocol_version: int | None = None
    keyspace: str | None = None

    SETTINGS: ClassVar[dict[str, str]] = {
        "hosts": "cassandra_hosts",
        "port": "cassandra_port",
        "protocol_version": "cassandra_protocol_version",
        "keyspace": "cassandra_keyspace",
    }


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
    # Simulated and replay sources: ticks per second in all (a live feed, not a flood).
    rate: float = 10.0
    seed: int = 42
    replay_file: str | None = None

    SETTINGS: ClassVar[dict[str, str]] = {"source": "source", "symbols": "symbols"}

    def build(self, settings: Settings) -> PriceSource:
        return build_source(
            settings,
            interval=self.interval_s,
            rate=self.rate,
            seed=self.seed,
            replay_file=Path(self.replay_file) if self.replay_file else None,
        )
