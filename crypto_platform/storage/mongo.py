"""MongoDB: the raw tick store (`crypto.prices`, `_id` = the tick identity)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.collection import Collection

from crypto_platform.settings import Settings

# (name, keys): the sink upserts by _id; readers ask "a symbol's ticks over time".
PRICE_INDEXES: tuple[tuple[str, list[tuple[str, int]]], ...] = (
    ("symbol_event_time", [("symbol", ASCENDING), ("event_time_ms", DESCENDING)]),
    ("ingest_time", [("ingest_time_ms", DESCENDING)]),
)


def connect(settings: Settings, *, timeout_ms: int = 5000) -> MongoClient:
    """A client for the configured URI; it connects lazily, on first use."""
    return MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True)


def prices_collection(client: MongoClient, settings: Settings) -> Collection:
    return client[settings.mongo_database][settings.mongo_collection]


def ensure_indexes(collection: Collection) -> list[str]:
    """Create the price indexes if missing (create_index is idempotent); return their names."""
    return [collection.create_index(keys, name=name) for name, keys in PRICE_INDEXES]
