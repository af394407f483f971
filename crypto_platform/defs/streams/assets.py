"""Stream and table assets, declared as specs: the engine writes them, Dagster shows them.

Their keys have one part per system and one for the object, e.g. ["kafka", "crypto_prices"].
"""

import dagster as dg

GROUP = "streams"

KAFKA_PRICES = dg.AssetKey(["kafka", "crypto_prices"])
KAFKA_PRICES_DLQ = dg.AssetKey(["kafka", "crypto_prices_dlq"])
MONGO_PRICES = dg.AssetKey(["mongo", "prices"])

STREAM_ASSETS = [
    dg.AssetSpec(
        KAFKA_PRICES,
        description="Kafka topic crypto.prices: one JSON tick per message, keyed by symbol.",
        group_name=GROUP,
        kinds={"kafka"},
    ),
    dg.AssetSpec(
        KAFKA_PRICES_DLQ,
        description="Kafka topic crypto.prices.dlq: messages the sink could not store, "
        "with the reason, the original bytes and where they came from.",
        group_name=GROUP,
        kinds={"kafka"},
        deps=[KAFKA_PRICES],
    ),
    dg.AssetSpec(
        MONGO_PRICES,
        description="MongoDB crypto.prices: every tick, _id = source:symbol:event_time_ms.",
        group_name=GROUP,
        kinds={"mongodb"},
        deps=[KAFKA_PRICES],
    ),
]
