"""One resource per external system; each field shows, and can override, one `CRYPTO_*` setting.

A field's default and description are its setting's own (`Settings.model_fields`, never
a second copy), so the Dagster UI shows what a run uses. A list is shown comma-separated,
and the simulated rate as text, as their variables hold them: Dagster binds a variable to
a text field (`dg.EnvVar`) or an int field (`dg.EnvVar.int`) only. The definitions bind
each field whose variable is set when they load to that variable
(`crypto_platform.defs.resources`): the UI names it, never shows its value, and Dagster
reads the value when a run, or a sensor's evaluation, starts. Secrets (the Kafka and
Cassandra passwords, the Coinranking key, the MongoDB URI) enter a resource that way only.

A field not at its default overrides its setting. A field at its default leaves the
setting to the environment, read when a run uses the resource (`settings_for`): Dagster
itself does not tell a default from the same value given. Sensors and schedules read
theirs once per process instead (`loaded_settings`), not at each evaluation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import dagster as dg
from cassandra.cluster import Session
from pydantic import Field, PrivateAttr
from pymongo import MongoClient

from crypto_platform.reports import stores
from crypto_platform.settings import ENV_PREFIX, Settings, env_text, env_variable, load_settings
from crypto_platform.sources import PriceSource, build_source

# Where a field names the setting it shows (its `json_schema_extra`).
SETTING = "crypto_platform/setting"
# The class of `dg.EnvVar.int(...)`, which Dagster does not export by name.
_INT_ENV_VAR = type(dg.EnvVar.int(f"{ENV_PREFIX}UNUSED"))


def as_config(value: Any) -> Any:
    """A setting's value as a resource field holds it: as its variable would, but for ints.

    None, text and ints stay; anything else is its variable's text (a list
    comma-separated, a float as text), which the settings parse again.
    """
    if value is None or isinstance(value, int | str):
        return value
    return env_text(value)


def _setting(name: str) -> Any:
    """A field showing setting `name`: its default and description, as `Settings` has them."""
    info = Settings.model_fields[name]
    return Field(
        default=as_config(info.default),
        description=f"{info.description} Set by `{env_variable(name)}`.",
        json_schema_extra={SETTING: name},
    )


class SettingsResource(dg.ConfigurableResource):
    """A resource whose fields show settings, and override those not at their default."""

    @classmethod
    def settings_map(cls) -> dict[str, str]:
        """Each field that shows a setting, and that setting's name."""
        return {
            field: str(extra[SETTING])
            for field, info in cls.model_fields.items()
            if isinstance(extra := info.json_schema_extra, dict) and SETTING in extra
        }

    def overrides(self) -> dict[str, Any]:
        """The settings this resource sets: its fields that are given and not at their default.

        A field still bound to its variable (outside a run, which resolves it) reads it now.
        """
        fields = type(self).model_fields
        given: dict[str, Any] = {}
        for field, setting in self.settings_map().items():
            value = getattr(self, field)
            if isinstance(value, (dg.EnvVar, _INT_ENV_VAR)):
                value = value.get_value()
            if value is not None and value != fields[field].default:
                given[setting] = value
        return given


def _overrides(resources: Iterable[SettingsResource]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for resource in resources:
        merged.update(resource.overrides())
    return merged


def settings_for(*resources: SettingsResource) -> Settings:
    """What a run uses: the overrides of `resources`, the rest read from the environment now."""
    return load_settings(**_overrides(resources))


@functools.cache
def _loaded(overrides: frozenset[tuple[str, Any]]) -> Settings:
    return load_settings(**dict(overrides))


def loaded_settings(*resources: SettingsResource) -> Settings:
    """`settings_for`, but reading the environment once per process, not at each call.

    For sensors, schedules, and what the definitions fix when they load (the streams'
    freshness policy). A code location evaluates its sensors and schedules again and
    again in the one process that loaded its definitions: they use the settings read
    then (the definitions' first call), and a changed variable takes a reload of the code
    location, as a changed definition does. Each set of overrides is read once too.
    """
    return _loaded(frozenset(_overrides(resources).items()))


def forget_loaded_settings() -> None:
    """Read the environment again at the next `loaded_settings` (a test changing a variable)."""
    _loaded.cache_clear()


class _ClientResource(SettingsResource):
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

    bootstrap_servers: str = _setting("kafka_bootstrap_servers")
    topic: str = _setting("kafka_topic")
    dlq_topic: str = _setting("kafka_dlq_topic")
    consumer_group: str = _setting("kafka_consumer_group")
    sasl_password: str | None = _setting("kafka_sasl_password")

    def _open(self, settings: Settings) -> stores.KafkaClients:
        return stores.open_kafka(settings)

    def _close(self, client: stores.KafkaClients) -> None:
        client.close()


class MongoResource(_ClientResource):
    """The MongoDB deployment holding the raw ticks."""

    uri: str = _setting("mongo_uri")
    database: str = _setting("mongo_database")
    collection: str = _setting("mongo_collection")

    def _open(self, settings: Settings) -> MongoClient:
        return stores.open_mongo(settings)

    def _close(self, client: MongoClient) -> None:
        client.close()


class CassandraResource(_ClientResource):
    """The Cassandra cluster holding prices and aggregates."""

    hosts: str = _setting("cassandra_hosts")
    port: int = _setting("cassandra_port")
    protocol_version: int = _setting("cassandra_protocol_version")
    keyspace: str = _setting("cassandra_keyspace")
    # Where the storage report asks a node without size tables (the local 2.1) over JMX.
    jmx_port: int = _setting("cassandra_jmx_port")
    password: str | None = _setting("cassandra_password")

    def _open(self, settings: Settings) -> Session:
        return stores.open_cassandra(settings)

    def _close(self, client: Session) -> None:
        stores.close_cassandra(client)


class SparkResource(SettingsResource):
    """Where the Spark driver connects: `local[*]` here, `spark://host:7077` on a cluster."""

    master: str = _setting("spark_master")
    driver_memory: str = _setting("spark_driver_memory")


class PriceSourceResource(SettingsResource):
    """Which source the producer reads, for which symbols, how often."""

    source: str = _setting("source")
    symbols: str = _setting("symbols")
    # Text, as its variable holds it: Dagster binds no float field to a variable.
    rate: str = _setting("simulated_rate")
    coinranking_api_key: str | None = _setting("coinranking_api_key")
    interval_s: float = Field(
        default=2.0,
        description="Seconds between the polls of a REST source (Binance, Coinranking).",
    )
    seed: int = Field(default=42, description="Seed of the simulated price paths.")
    replay_file: str | None = Field(
        default=None, description="The file of ticks the `replay` source plays, line by line."
    )

    def build(self, settings: Settings) -> PriceSource:
        return build_source(
            settings,
            interval=self.interval_s,
            rate=settings.simulated_rate,
            seed=self.seed,
            replay_file=Path(self.replay_file) if self.replay_file else None,
        )
