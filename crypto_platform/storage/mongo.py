"""MongoDB: the raw tick store (`crypto.prices`, `_id` = the tick identity)."""

from __future__ import annotations

from typing import Any

from bson.int64 import Int64
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.collection import Collection

from crypto_platform.settings import Settings

# (name, keys): the sink upserts by _id; readers ask "a coin's ticks from a source over
# time" and "every coin's ticks in a span" (gaps, repairs: a span's slice, never the whole
# store). The source is in the coin's index: gap detection asks for the tick before and
# after a span of each (source, coin) it checks, and without the source a pair with no
# ticks scanned every tick of the coin after the span.
PRICE_INDEXES: tuple[tuple[str, list[tuple[str, int]]], ...] = (
    (
        "symbol_source_event_time",
        [("symbol", ASCENDING), ("source", ASCENDING), ("event_time_ms", DESCENDING)],
    ),
    ("event_time", [("event_time_ms", ASCENDING)]),
    ("ingest_time", [("ingest_time_ms", DESCENDING)]),
)
SUPERSEDED_INDEXES = ("symbol_event_time",)  # an earlier release's; dropped by ensure_indexes


def connect(settings: Settings, *, timeout_ms: int = 5000) -> MongoClient:
    """A client for the configured URI; it connects lazily, on first use."""
    return MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True)


def plain_ints(document: dict[str, Any]) -> dict[str, Any]:
    """The document with `bson.Int64` values as plain ints.

    64-bit integers can come back from the server as `bson.Int64`, which the Cassandra
    driver's timestamp type and Dagster's serializer refuse.
    """
    return {key: int(value) if type(value) is Int64 else value for key, value in document.items()}


def prices_collection(client: MongoClient, settings: Settings) -> Collection:
    return client[settings.mongo_database][settings.mongo_collection]


# Ranges of Kafka offsets removed by retention before a consumer read them (see
# streaming/retention_loss.py): beside the ticks, so whoever reads the store sees its holes.
DATA_LOSS_COLLECTION = "data_loss"


def data_loss_collection(client: MongoClient, settings: Settings) -> Collection:
    return client[settings.mongo_database][DATA_LOSS_COLLECTION]


# Hours that received ticks behind Spark's watermark (see streaming/late_ticks.py).
LATE_HOURS_COLLECTION = "late_hours"


def late_hours_collection(client: MongoClient, settings: Settings) -> Collection:
    return client[settings.mongo_database][LATE_HOURS_COLLECTION]


# The gaps found in the ticks and what became of them (see completeness/gaps.py).
GAPS_COLLECTION = "gaps"


def gaps_collection(client: MongoClient, settings: Settings) -> Collection:
    return client[settings.mongo_database][GAPS_COLLECTION]


# The alerts the alert rules fired, one per episode, with their evidence (see alerts/store.py).
ALERTS_COLLECTION = "alerts"


def alerts_collection(client: MongoClient, settings: Settings) -> Collection:
    return client[settings.mongo_database][ALERTS_COLLECTION]


# Expires a tick `ttl_days` after its event time (CRYPTO_MONGO_TTL_DAYS).
TTL_INDEX = "event_time_ttl"
DAY_S = 86_400


def ensure_indexes(collection: Collection, *, ttl_days: int | None = None) -> list[str]:
    """Create the price indexes if missing, and set the TTL; return the index names.

    Idempotent and changeable later: a new `ttl_days` retunes the TTL index in place
    (collMod), None drops it (ticks are kept). An earlier release's index that one here
    replaces is dropped: every index costs each insert.
    """
    names = [collection.create_index(keys, name=name) for name, keys in PRICE_INDEXES]
    existing = collection.index_information()
    for name in SUPERSEDED_INDEXES:
        if name in existing:
            collection.drop_index(name)
    current = existing.get(TTL_INDEX)
    if ttl_days is None:
        if current:
            collection.drop_index(TTL_INDEX)
        return names
    expire_s = ttl_days * DAY_S
    if current is None:
        collection.create_index("event_time", name=TTL_INDEX, expireAfterSeconds=expire_s)
    elif current.get("expireAfterSeconds") != expire_s:
        collection.database.command(
            "collMod",
            collection.name,
            index={"name": TTL_INDEX, "expireAfterSeconds": expire_s},
        )
    return [*names, TTL_INDEX]
