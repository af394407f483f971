"""Every setting of the platform, read from `CRYPTO_*` environment variables.

Nothing here runs at import time: callers build `Settings()` when they start, so a
bad value fails at start-up with a message naming the variable (see `load_settings`).
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crypto_platform.candles import INTERVAL_NAMES, CandleInterval
from crypto_platform.errors import ConfigurationError
from crypto_platform.ticks import SYMBOL_PATTERN, SourceTag

SourceName = Literal["auto", "binance", "binance-ws", "coinranking", "simulated", "replay"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
CassandraConsistency = Literal["ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM", "ALL"]

ENV_PREFIX = "CRYPTO_"

log = logging.getLogger(__name__)


def env_variable(setting: str) -> str:
    """The environment variable of a setting: `kafka_topic` is `CRYPTO_KAFKA_TOPIC`."""
    return f"{ENV_PREFIX}{setting.upper()}"


def env_text(value: object) -> str:
    """A setting's value as its variable holds it (a secret in clear: never log it)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value)  # how pydantic-settings reads a mapping back
    return str(value)


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

    # Each field's description is its row in docs/settings.md and its comment in
    # docker/.env.example: after adding or changing a setting, run
    # `crypto-platform settings --write` (settings_catalog.py; a test fails until then).
    data_dir: Path = Field(
        Path(".crypto_platform"),
        description="Where the local stack keeps pid files, logs and data.",
    )
    vendor_dir: Path = Field(
        Path(".vendor"),
        description="Where `stack install` unpacks Cassandra (kept apart from data, shared by "
        "every stack).",
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Kafka brokers, `host:port[,host:port...]`; the local broker listens on the "
        "first one's port.",
    )
    kafka_bootstrap_timeout_s: Annotated[float, Field(gt=0)] = Field(
        10.0,
        description="How long a Kafka client waits for a broker to answer when it starts, in "
        "s, before it says the brokers are not reachable.",
    )
    kafka_topic: str = Field("crypto.prices", description="The tick topic.")
    kafka_dlq_topic: str = Field("crypto.prices.dlq", description="The dead-letter topic.")
    kafka_partitions: Annotated[int, Field(ge=1)] = Field(
        3, description="Partitions of the tick topic when it is created."
    )
    kafka_retention_ms: Annotated[int, Field(ge=60_000)] = Field(
        7 * 24 * 3600 * 1000, description="Retention of both topics, in ms (default: 7 days)."
    )
    kafka_consumer_group: str = Field(
        "crypto-mongo-sink", description="Consumer group of the MongoDB sink."
    )
    kafka_consumer_instance_id: str | None = Field(
        None,
        description="The sink's static group member id, so a restarted sink takes its "
        "partitions back at once (unset: `<hostname>-mongo-sink`); give each further sink on "
        "a host its own id.",
    )
    kafka_replication_factor: Annotated[int, Field(ge=1)] = Field(
        1, description="Replicas of both topics when they are created (3 on a cluster)."
    )
    # Authentication and TLS of every Kafka client (see streaming/kafka_options.py).
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        "PLAINTEXT",
        description="`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`, for every Kafka "
        "client and the Spark source.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`."
    )
    kafka_sasl_username: str | None = Field(
        None, description="Kafka user; required with a `SASL_*` protocol."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="Kafka password; required with a `SASL_*` protocol."
    )
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="CA bundle that signed the brokers' certificates (unset: the system's CAs).",
    )

    # The local server is one node: a direct connection keeps it in the client's view
    # through its restarts (replica-set discovery could drop it and never look again).
    mongo_uri: str = Field(
        "mongodb://127.0.0.1:27017/?directConnection=true",
        description="MongoDB URI; the local server listens on its port.",
    )
    mongo_database: str = Field("crypto", description="MongoDB database.")
    mongo_collection: str = Field("prices", description="Collection of the raw ticks.")
    mongo_ttl_days: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="Retention of raw ticks in days, a TTL index on `event_time` set by "
        "`stack up` / `provision` (unset: kept).",
    )
    # `majority` on a replica set, so a failover cannot roll back a write whose offset the
    # sink has committed.
    mongo_write_concern: Literal["1", "majority"] = Field(
        "1",
        description="The sink's write concern, `1` or `majority` (always journaled); "
        "`majority` on a replica set.",
    )

    cassandra_hosts: Annotated[list[str], NoDecode] = Field(
        ["127.0.0.1"], description="Cassandra contact points, comma-separated."
    )
    cassandra_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        9042, description="Cassandra's native protocol port."
    )
    cassandra_protocol_version: Annotated[int, Field(ge=3, le=5)] = Field(
        3,
        description="Native protocol version: 3 for the local 2.1 node, 4 or 5 for Cassandra 4/5.",
    )
    # An identifier, because CQL cannot bind a keyspace name as a parameter.
    cassandra_keyspace: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,47}$")] = Field(
        "crypto", description="Cassandra keyspace (letters, digits and `_`)."
    )
    cassandra_replication_factor: Annotated[int, Field(ge=1)] = Field(
        1, description="Replication factor when the keyspace is created."
    )
    cassandra_username: str | None = Field(
        None, description="Cassandra user (PasswordAuthenticator)."
    )
    cassandra_password: SecretStr | None = Field(None, description="Cassandra password.")
    cassandra_tls: bool = Field(False, description="Client-to-node TLS.")
    cassandra_tls_cafile: Path | None = Field(
        None,
        description="CA bundle that signed the nodes' certificates (unset: the system's CAs).",
    )
    cassandra_consistency: CassandraConsistency = Field(
        "LOCAL_ONE",
        description="Consistency level of every statement: `ONE`, `LOCAL_ONE`, `QUORUM`, "
        "`LOCAL_QUORUM` (with replication factor 3) or `ALL`.",
    )
    cassandra_prices_ttl_days: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="Retention of `prices_by_symbol` in days, its `default_time_to_live` set by "
        "`stack up` / `provision` (unset: rows never expire).",
    )
    cassandra_storage_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        7000, description="Local stack only: the Cassandra node's gossip port."
    )
    cassandra_ssl_storage_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        7001, description="Local stack only: the Cassandra node's TLS gossip port."
    )
    cassandra_jmx_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        7199, description="Local stack only: the Cassandra node's JMX port (nodetool)."
    )
    cassandra_heap: Annotated[str, Field(pattern=r"^\d+[MG]$")] = Field(
        "512M", description="Local stack only: the Cassandra node's JVM heap."
    )

    binance_base_url: str = Field("https://api.binance.com", description="Binance REST API.")
    binance_ws_url: str = Field(
        "wss://stream.binance.com:9443", description="Binance WebSocket streams."
    )
    coinranking_base_url: str = Field(
        "https://api.coinranking.com/v2", description="Coinranking v2 API."
    )
    coinranking_api_key: SecretStr | None = Field(
        None, description="Coinranking API key (`x-access-token`)."
    )
    source: SourceName = Field(
        "auto",
        description="Price source: `auto` (a live source when one answers, else simulated "
        "until one does), "
        "`binance`, `binance-ws`, `coinranking`, `simulated` or `replay`.",
    )
    auto_reprobe_s: Annotated[float, Field(gt=0)] = Field(
        180.0,
        description="With `auto` on a fallback (Coinranking, or the simulator): seconds "
        "between re-probes of the better live sources; the first that answers takes over.",
    )
    symbols: Annotated[list[str], NoDecode] = Field(
        ["BTC", "ETH", "SOL"], description="Base assets to follow, comma-separated."
    )
    simulated_rate: Annotated[float, Field(gt=0)] = Field(
        10.0,
        description="The simulated and replay sources in Dagster's `ingest_prices`: ticks per "
        "second, all coins together (`crypto-platform produce` takes `--rate`).",
    )

    gap_cadence_s: dict[str, Annotated[float, Field(gt=0)]] = Field(
        {"binance": 2.0, "binance-ws": 2.0, "coinranking": 2.0, "simulated": 2.0},
        description="Seconds between a source's ticks of one coin (JSON, by source; a source "
        "not named is not checked for gaps). Ticks further apart than 3 times this are a gap.",
    )

    stack_start_timeout_s: Annotated[float, Field(gt=0)] = Field(
        120.0, description="Local stack only: how long `stack up` waits for each server, in s."
    )

    spark_master: str = Field(
        "local[*]", description="Spark master: `local[*]`, or `spark://host:7077` for a cluster."
    )
    spark_driver_memory: Annotated[str, Field(pattern=r"^\d+[mMgG]$")] = Field(
        "1g", description="Spark driver heap, taken whole at start."
    )
    spark_ui_port: Annotated[int, Field(ge=1024, le=65535)] = Field(
        4040,
        description="Port of the Spark driver's web UI, which each `aggregate_prices` run "
        "links to; when it is taken, Spark binds the next free one (up to 16 further).",
    )
    # About the executor cores: on 2 local cores, 2 beat 4 (bench: catch-up 6,703 rows/s
    # against 6,024; micro-batch p50 2.27 s against 2.72 s).
    spark_shuffle_partitions: Annotated[int, Field(ge=1)] = Field(
        2,
        description="Spark shuffle partitions; fixed in the checkpoint after the first run "
        "(changing it needs a new checkpoint dir).",
    )
    spark_checkpoint_dir: Path | None = Field(
        None,
        description="Spark checkpoints, per topic and keyspace (unset: "
        "`<data dir>/spark/checkpoints`).",
    )
    spark_starting_offsets: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a new checkpoint starts reading Kafka."
    )
    spark_max_offsets_per_trigger: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Rows per micro-batch at most (unset: no limit)."
    )
    spark_fail_on_data_loss: bool = Field(
        True,
        description="Stop the Spark job when offsets it still had to read were removed by "
        "Kafka's retention (false: skip them, counted and logged).",
    )
    spark_trigger_interval_s: Annotated[float, Field(ge=0)] = Field(
        5.0, description="Continuous mode: seconds between micro-batches."
    )
    spark_continuous: bool = Field(
        True,
        description="Run `aggregate_prices` continuously; false: a schedule runs it in "
        "available-now mode every 5 min.",
    )
    aggregate_window_s: Annotated[int, Field(ge=1)] = Field(
        300, description="Length of an aggregation window, in s."
    )
    aggregate_slide_s: Annotated[int, Field(ge=1)] = Field(
        60, description="Slide of the aggregation windows, in s."
    )
    aggregate_watermark_s: Annotated[int, Field(ge=0)] = Field(
        600,
        description="Watermark: how late a tick may come and still count, in s; an hour "
        "settles (its statistics run) once the sink stored a tick this much past its end.",
    )
    aggregate_source_priority: Annotated[list[SourceTag], NoDecode] = Field(
        ["binance", "binance-ws", "coinranking", "replay", "simulated"],
        description="Which source's window `/latestAggregate` serves when a coin has "
        "several (comma-separated, first wins): of the sources whose window ends within one "
        "window length of the coin's newest, the first listed; `?source=` chooses one.",
    )
    candle_intervals: Annotated[list[CandleInterval], NoDecode] = Field(
        list(INTERVAL_NAMES),
        description="Candles the streaming job and the repair build (comma-separated, of 1m, "
        "5m, 1h, 1d; 1d needs 1h; empty: none). A change applies from the job's next start; "
        "the candles open then are whole once `crypto-platform repair` of their span runs "
        "after they closed.",
    )

    check_tick_max_age_s: Annotated[float, Field(gt=0)] = Field(
        300.0,
        description="The `tick_freshness` check: how old a coin's newest tick may be, in s; "
        "in Dagster, the streams' freshness policy (read when the definitions load).",
    )
    check_gap_max_age_s: Annotated[float, Field(gt=0)] = Field(
        3600.0,
        description="The `gaps_repaired` check fails on a gap still open this long after it "
        "began, in s.",
    )
    check_dlq_max_per_hour: Annotated[int, Field(ge=1)] = Field(
        100, description="The `dlq_growth` check warns at this many dead letters in an hour."
    )

    # The alert rules and where their alerts go (see alerts/ and docs/alerts.md).
    alert_rules_file: Path | None = Field(
        None,
        description="The alert rules (YAML, see docs/alerts.md), read when the Dagster "
        "definitions load; a mistake is refused in one line (unset: no alerts).",
    )
    alert_webhook_url: SecretStr | None = Field(
        None,
        description="Where each alert is POSTed as JSON; its URL may hold a token, so it is "
        "never shown (unset: alerts are recorded, not sent).",
    )
    alert_webhook_timeout_s: Annotated[float, Field(gt=0)] = Field(
        5.0, description="How long one webhook request may take, in s."
    )
    alert_webhook_attempts: Annotated[int, Field(ge=1)] = Field(
        3,
        description="Webhook attempts per alert and evaluation, with jittered backoff; an alert "
        "not delivered is sent again at the next evaluation (after Retry-After, if given).",
    )

    api_host: str = Field("127.0.0.1", description="Address `crypto-platform api` listens on.")
    api_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        8000, description="Port `crypto-platform api` listens on."
    )
    api_cors_origins: Annotated[list[str], NoDecode] = Field(
        [],
        description="Origins allowed to call the API from a browser, comma-separated (unset: "
        "no CORS headers).",
    )
    api_max_subscribers: Annotated[int, Field(ge=1)] = Field(
        100,
        description="Live streams (`/stream`) the API serves at once; one more is refused with "
        "503 and Retry-After.",
    )
    api_backend_cache_s: Annotated[float, Field(ge=0)] = Field(
        2.0,
        description="How long `/health`, `/pipeline`, `/metrics` and the live pipeline event reuse "
        "one reading of the backends, in s (0: a reading per request).",
    )

    _split_hosts = field_validator("cassandra_hosts", mode="before")(_split_list)
    _split_origins = field_validator("api_cors_origins", mode="before")(_split_list)
    _split_priority = field_validator("aggregate_source_priority", mode="before")(_split_list)
    _split_intervals = field_validator("candle_intervals", mode="before")(_split_list)

    _check_symbols = field_validator("symbols", mode="before")(parse_symbols)

    @field_validator("candle_intervals")
    @classmethod
    def _day_candles_need_hours(cls, value: list[str]) -> list[str]:
        if "1d" in value and "1h" not in value:
            raise ValueError("1d candles are repaired from the 1h ones: list 1h too")
        return value

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
        return {
            env_variable(name): env_text(value)
            for name, value in self.model_dump().items()
            if value is not None
        }

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
    known = {env_variable(name) for name in Settings.model_fields}
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
            problems.append(f"{env_variable(field)}: {message} {_shown(field, item)}")
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
    """Once per variable and process (settings are loaded often, e.g. by each run's resources)."""
    hint = f"did you mean {close[0]}?" if close else "see docs/settings.md"
    log.warning(f"{variable} is not a setting and is ignored ({hint})")
