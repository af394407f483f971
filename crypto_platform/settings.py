"""Every setting of the platform, read from `CRYPTO_*` environment variables.

Nothing here runs at import time: callers build `Settings()` when they start, so a
bad value fails at start-up with a message naming the variable (see `load_settings`).
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crypto_platform.errors import ConfigurationError
from crypto_platform.ticks import SYMBOL_PATTERN

SourceName = Literal["auto", "binance", "binance-ws", "coinranking", "simulated", "replay"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
CassandraConsistency = Literal["ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM", "ALL"]

ENV_PREFIX = "CRYPTO_"

log = logging.getLogger(__name__)


def _split_list(value: object) -> object:
    """Accept `BTC,ETH` (what people type) as well as a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def parse_symbols(value: object) -> list[str]:
    """`btc, eth` as ["BTC", "ETH"]; a ValueError names what breaks the tick's symbol rule."""
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list | tuple):
        raise ValueError("expected comma-separated symbols, e.g. BTC,ETH")
    symbols = [str(part).strip().upper() for part in parts if str(part).strip()]
    if not symbols:
        raise ValueError("no symbol given: list base assets, e.g. BTC,ETH")
    bad = [symbol for symbol in symbols if not re.fullmatch(SYMBOL_PATTERN, symbol)]
    if bad:
        raise ValueError(
            f"not a symbol: {', '.join(bad)} (a base asset in letters and digits, e.g. BTC "
            "for BTC-USD)"
        )
    return symbols


class Settings(BaseSettings):
    """Connection points, names and tuning of the platform; defaults fit the local stack."""

    # An empty variable means "not set" (the default), so a deployment can pass every
    # variable through (docker/compose.yaml does) and leave the unused ones empty.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, env_ignore_empty=True
    )

    # Where the local stack keeps pid files, logs and data.
    data_dir: Path = Path(".crypto_platform")
    # Where `stack install` unpacks Cassandra (kept apart from data, shared by stacks).
    vendor_dir: Path = Path(".vendor")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic: str = "crypto.prices"
    kafka_dlq_topic: str = "crypto.prices.dlq"
    kafka_partitions: Annotated[int, Field(ge=1)] = 3
    kafka_retention_ms: Annotated[int, Field(ge=60_000)] = 7 * 24 * 3600 * 1000
    kafka_consumer_group: str = "crypto-mongo-sink"
    # Static group membership: a restarted sink takes its partitions back at once.
    # Default: one per host; give each further sink on a host its own id.
    kafka_consumer_instance_id: str | None = None
    # Replicas of each topic when it is created: 1 for one broker, 3 on a production cluster.
    kafka_replication_factor: Annotated[int, Field(ge=1)] = 1
    # Authentication and TLS of every Kafka client (see streaming/kafka_options.py).
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # CA bundle that signed the brokers' certificates (default: the system's CAs).
    kafka_ssl_cafile: Path | None = None

    # The local server is one node: a direct connection keeps it in the client's view
    # through its restarts (replica-set discovery could drop it and never look again).
    mongo_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_database: str = "crypto"
    mongo_collection: str = "prices"
    # Retention of raw ticks in MongoDB (a TTL index on event_time); None keeps them all.
    mongo_ttl_days: Annotated[int, Field(ge=1)] | None = None
    # The sink's write concern (always journaled): `majority` on a replica set, so a
    # failover cannot roll back a write whose offset the sink has committed.
    mongo_write_concern: Literal["1", "majority"] = "1"

    cassandra_hosts: Annotated[list[str], NoDecode] = ["127.0.0.1"]
    cassandra_port: Annotated[int, Field(ge=1, le=65535)] = 9042
    cassandra_protocol_version: Annotated[int, Field(ge=3, le=5)] = 3
    # An identifier, because CQL cannot bind a keyspace name as a parameter.
    cassandra_keyspace: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,47}$")] = "crypto"
    cassandra_replication_factor: Annotated[int, Field(ge=1)] = 1
    # Authentication (PasswordAuthenticator), TLS and the default consistency level.
    cassandra_username: str | None = None
    cassandra_password: SecretStr | None = None
    cassandra_tls: bool = False
    # CA bundle that signed the nodes' certificates (default: the system's CAs).
    cassandra_tls_cafile: Path | None = None
    cassandra_consistency: CassandraConsistency = "LOCAL_ONE"
    # Retention of prices_by_symbol (its default_time_to_live); None keeps every row.
    cassandra_prices_ttl_days: Annotated[int, Field(ge=1)] | None = None
    # Only the local stack uses these: the node's internal ports and its heap.
    cassandra_storage_port: Annotated[int, Field(ge=1, le=65535)] = 7000
    cassandra_ssl_storage_port: Annotated[int, Field(ge=1, le=65535)] = 7001
    cassandra_jmx_port: Annotated[int, Field(ge=1, le=65535)] = 7199
    cassandra_heap: Annotated[str, Field(pattern=r"^\d+[MG]$")] = "512M"

    binance_base_url: str = "https://api.binance.com"
    binance_ws_url: str = "wss://stream.binance.com:9443"
    coinranking_base_url: str = "https://api.coinranking.com/v2"
    coinranking_api_key: SecretStr | None = None
    source: SourceName = "auto"
    symbols: Annotated[list[str], NoDecode] = ["BTC", "ETH", "SOL"]

    stack_start_timeout_s: Annotated[float, Field(gt=0)] = 120.0

    spark_master: str = "local[*]"
    spark_driver_memory: Annotated[str, Field(pattern=r"^\d+[mMgG]$")] = "1g"
    # Fixed in the checkpoint after the first run: changing it needs a new checkpoint dir.
    # About the executor cores: on 2 local cores, 2 beat 4 (bench: catch-up 6,703 rows/s
    # against 6,024; micro-batch p50 2.27 s against 2.72 s).
    spark_shuffle_partitions: Annotated[int, Field(ge=1)] = 2
    # Default: <data_dir>/spark/checkpoints.
    spark_checkpoint_dir: Path | None = None
    spark_starting_offsets: Literal["earliest", "latest"] = "earliest"
    spark_max_offsets_per_trigger: Annotated[int, Field(ge=1)] | None = None
    spark_trigger_interval_s: Annotated[float, Field(ge=0)] = 5.0
    # False: aggregate_prices runs on a schedule in available-now mode instead.
    spark_continuous: bool = True
    aggregate_window_s: Annotated[int, Field(ge=1)] = 300
    aggregate_slide_s: Annotated[int, Field(ge=1)] = 60
    aggregate_watermark_s: Annotated[int, Field(ge=0)] = 600

    # Asset checks: the newest tick of each coin may be this old; dead letters per hour
    # above this make the DLQ growth check warn.
    check_tick_max_age_s: Annotated[float, Field(gt=0)] = 300.0
    check_dlq_max_per_hour: Annotated[int, Field(ge=1)] = 100

    # `crypto-platform api`: where it listens, and which origins may call it from a browser
    # (comma-separated; empty: no CORS headers).
    api_host: str = "127.0.0.1"
    api_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    api_cors_origins: Annotated[list[str], NoDecode] = []

    _split_hosts = field_validator("cassandra_hosts", mode="before")(_split_list)
    _split_origins = field_validator("api_cors_origins", mode="before")(_split_list)

    _check_symbols = field_validator("symbols", mode="before")(parse_symbols)

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("mongo_uri")
    @classmethod
    def _check_mongo_uri(cls, value: str) -> str:
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            # The value is not echoed: a URI can carry a password.
            raise ValueError("expected a mongodb:// or mongodb+srv:// URI")
        return value

    def as_env(self) -> dict[str, str]:
        """These settings as `CRYPTO_*` variables for a child process (secrets too: never log)."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, list):
                value = ",".join(value)
            env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
        return env

    @property
    def checkpoint_root(self) -> Path:
        return (self.spark_checkpoint_dir or self.data_dir / "spark" / "checkpoints").resolve()

    @property
    def kafka_port(self) -> int:
        """Port of the first bootstrap server: the one the local broker listens on."""
        return int(self.kafka_bootstrap_servers.split(",")[0].rpartition(":")[2])

    @property
    def mongo_port(self) -> int:
        """Port of the MongoDB URI's first host: the one the local server listens on."""
        return urlsplit(self.mongo_uri).port or 27017


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation error into one readable line.

    The message names each bad environment variable and what it expects, so a user
    sees `CRYPTO_CASSANDRA_PORT: Input should be a valid integer (got 'abc')`, not a
    pydantic traceback. A `CRYPTO_*` variable that is no setting gets a warning naming
    the closest one: a misspelt name would otherwise be ignored without a word.
    """
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    for variable in sorted(os.environ):
        if variable.startswith(ENV_PREFIX) and variable not in known:
            _warn_unknown(variable, tuple(difflib.get_close_matches(variable, known, n=1)))
    _reject_blank_symbols(overrides)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else "settings"
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{ENV_PREFIX}{field.upper()}: {message} {_shown(field, item)}")
        raise ConfigurationError("invalid setting " + "; ".join(problems)) from None


def _reject_blank_symbols(overrides: dict[str, object]) -> None:
    """A set but blank `CRYPTO_SYMBOLS` is a mistake, not a request for the default coins.

    Empty variables are otherwise ignored (compose passes unset ones as empty).
    """
    variable = f"{ENV_PREFIX}SYMBOLS"
    value = os.environ.get(variable)
    if "symbols" in overrides or value is None or value.strip():
        return
    try:
        parse_symbols(value)
    except ValueError as error:
        raise ConfigurationError(
            f"invalid setting {variable}: {error}, or unset it for the default coins"
        ) from None


def _shown(field: str, item: Any) -> str:
    """The rejected value, unless the setting can hold a secret (a URI's password)."""
    known = Settings.model_fields.get(field)
    annotation = str(known.annotation) if known else ""
    if field == "mongo_uri" or "SecretStr" in annotation:
        return "(value not shown: it may hold a secret)"
    return f"(got {item.get('input')!r})"


@functools.cache
def _warn_unknown(variable: str, close: tuple[str, ...]) -> None:
    """Once per variable and process (settings are loaded often, e.g. by each sensor tick)."""
    hint = f"did you mean {close[0]}?" if close else "see the settings table in the README"
    log.warning(f"{variable} is not a setting and is ignored ({hint})")
