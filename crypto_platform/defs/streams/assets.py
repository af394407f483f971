"""Sources, streams and stores, declared as specs: the engine writes them, Dagster shows them.

Keys have one part per system and one for the object, e.g. ["kafka", "crypto_prices"].
The price sources are external assets (nothing here materialises them): they start the
lineage that runs through Kafka and MongoDB to the reports. The stores carry their table
name and column schema (schemas.py), and the streams Dagster's freshness policy.

`mongo/settled_hours` is the tick stream cut into hours: an hour's partition is recorded
(by the `settled_hours` sensor) once every tick of it has reached MongoDB, and the hourly
completeness and statistics start from it.
"""

import dagster as dg

from crypto_platform.defs.streams.freshness import stream_freshness
from crypto_platform.defs.streams.hours import HOURLY
from crypto_platform.defs.streams.schemas import (
    DEAD_LETTER,
    PRICE_DOCUMENT,
    TICK_MESSAGE,
    design_name,
    table_metadata,
)

GROUP = "streams"
SOURCES_GROUP = "sources"
OWNERS = ["team:data-platform"]

SOURCE_BINANCE = dg.AssetKey(["sources", "binance"])
SOURCE_COINRANKING = dg.AssetKey(["sources", "coinranking"])
SOURCE_SIMULATED = dg.AssetKey(["sources", "simulated"])

KAFKA_PRICES = dg.AssetKey(["kafka", "crypto_prices"])
KAFKA_PRICES_DLQ = dg.AssetKey(["kafka", "crypto_prices_dlq"])
MONGO_PRICES = dg.AssetKey(["mongo", "prices"])
SETTLED_HOURS = dg.AssetKey(["mongo", "settled_hours"])

SOURCE_ASSETS = [
    dg.AssetSpec(
        SOURCE_BINANCE,
        description="Binance spot prices: REST /api/v3/ticker/24hr, or the WebSocket "
        "miniTicker stream (CRYPTO_SOURCE=binance or binance-ws).",
        group_name=SOURCES_GROUP,
        kinds={"api"},
        owners=OWNERS,
    ),
    dg.AssetSpec(
        SOURCE_COINRANKING,
        description="Coinranking v2 /coins: prices, market cap, volume "
        "(CRYPTO_SOURCE=coinranking).",
        group_name=SOURCES_GROUP,
        kinds={"api"},
        owners=OWNERS,
    ),
    dg.AssetSpec(
        SOURCE_SIMULATED,
        description="Seeded geometric Brownian motion or a recorded JSONL replay, for offline "
        "runs (CRYPTO_SOURCE=simulated or replay; `auto` falls back to it).",
        group_name=SOURCES_GROUP,
        kinds={"python"},
        owners=OWNERS,
    ),
]

STREAM_ASSETS = [
    *SOURCE_ASSETS,
    dg.AssetSpec(
        KAFKA_PRICES,
        description="Kafka topic crypto.prices: one JSON tick per message, keyed by symbol. "
        "Materialised by ingest_prices when new ticks were published (at most once a "
        "minute); observed with counts and rates in between.",
        group_name=GROUP,
        kinds={"kafka"},
        owners=OWNERS,
        deps=[SOURCE_BINANCE, SOURCE_COINRANKING, SOURCE_SIMULATED],
        metadata=table_metadata("kafka", design_name("kafka_topic"), TICK_MESSAGE),
        freshness_policy=stream_freshness(),
    ),
    dg.AssetSpec(
        KAFKA_PRICES_DLQ,
        description="Kafka topic crypto.prices.dlq: messages the sink could not store, "
        "with the reason, the original bytes and where they came from.",
        group_name=GROUP,
        kinds={"kafka"},
        owners=OWNERS,
        deps=[KAFKA_PRICES],
        metadata=table_metadata("kafka", design_name("kafka_dlq_topic"), DEAD_LETTER),
    ),
    dg.AssetSpec(
        MONGO_PRICES,
        description="MongoDB crypto.prices: every tick, _id = source:symbol:event_time_ms. "
        "Materialised by persist_prices when new ticks were stored (at most once a minute).",
        group_name=GROUP,
        kinds={"mongodb"},
        owners=OWNERS,
        deps=[KAFKA_PRICES],
        metadata=table_metadata(
            "mongodb", design_name("mongo_database", "mongo_collection"), PRICE_DOCUMENT
        ),
        freshness_policy=stream_freshness(),
    ),
    dg.AssetSpec(
        SETTLED_HOURS,
        description="crypto.prices by UTC hour: an hour's partition is recorded once the "
        "MongoDB sink's newest stored event time, less CRYPTO_AGGREGATE_WATERMARK_S, has passed "
        "the hour's end. Every tick of the hour is then stored, or late (the sink records its "
        "hour, which is repaired and run again). Recorded by the settled_hours sensor.",
        group_name=GROUP,
        kinds={"mongodb"},
        owners=OWNERS,
        deps=[MONGO_PRICES],
        partitions_def=HOURLY,
    ),
]
