"""Read-only aggregation pipelines over crypto.prices, run on the server.

Every figure is computed by MongoDB; only the per-coin results (or, for latency
percentiles, one number per tick) cross the wire. Times are epoch milliseconds and
windows are half-open, `[start_ms, end_ms)` on `event_time_ms`.

Each query reads a bounded slice through an index (`symbol_source_event_time`, `event_time`,
`ingest_time`), never the whole collection. Its first `$match` holds only the indexed
range: the local SecantusDB plans an index only for a first stage without a top-level
`$or` (MongoDB merges consecutive `$match` stages itself). Whole-collection figures are
the server's own (collStats, the estimated count), asked within `STATS_BUDGET_MS`.
"""

from __future__ import annotations

import math
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import ExecutionTimeout

from crypto_platform.ticks import SOURCES

# When the sink handed a tick's batch to MongoDB (before the write; see streaming/sink.py).
HANDED_AT = "handed_at_ms"
# The same moment in documents stored before the field was named for it.
LEGACY_STORED_AT = "stored_at_ms"

BAD_PRICE = {
    "$or": [
        {"price": {"$lte": 0}},
        {"price": {"$in": [math.nan, math.inf, -math.inf]}},
        {"price": {"$not": {"$type": "number"}}},
    ]
}


# MongoDB answers collStats and the estimated count from metadata at once; the local
# SecantusDB walks every document (and holds its lock meanwhile): past this budget the
# figure is reported missing rather than waited for.
STATS_BUDGET_MS = 500


def _in_window(start_ms: int, end_ms: int) -> dict[str, Any]:
    return {"$match": {"event_time_ms": {"$gte": start_ms, "$lt": end_ms}}}


def _ingested_since(since_ms: int) -> dict[str, Any]:
    return {"$match": {"ingest_time_ms": {"$gte": since_ms}}}


def _rows(collection: Collection, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for row in collection.aggregate(pipeline):
        row["symbol"] = row.pop("_id") if "symbol" not in row else row["symbol"]
        row.pop("_id", None)
        rows.append(row)
    return rows


def price_statistics(collection: Collection, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Per coin: count, open, high, low, close, mean, stddev (sample) and change %."""
    return _rows(
        collection,
        [
            _in_window(start_ms, end_ms),
            {"$sort": {"symbol": 1, "event_time_ms": 1, "_id": 1}},
            {
                "$group": {
                    "_id": "$symbol",
                    "count": {"$sum": 1},
                    "open": {"$first": "$price"},
                    "high": {"$max": "$price"},
                    "low": {"$min": "$price"},
                    "close": {"$last": "$price"},
                    "mean": {"$avg": "$price"},
                    "stddev": {"$stdDevSamp": "$price"},
                }
            },
            {
                "$addFields": {
                    "change_pct": {
                        "$multiply": [
                            100,
                            {"$divide": [{"$subtract": ["$close", "$open"]}, "$open"]},
                        ]
                    }
                }
            },
            {"$sort": {"_id": 1}},
        ],
    )


def _with_previous_tick() -> list[dict[str, Any]]:
    """Each tick beside the previous tick of its coin (in event time); the first is dropped."""
    previous = {"partitionBy": "$symbol", "sortBy": {"event_time_ms": 1}}
    return [
        {
            "$setWindowFields": {
                **previous,
                "output": {
                    "previous_price": {"$shift": {"output": "$price", "by": -1}},
                    "previous_time_ms": {"$shift": {"output": "$event_time_ms", "by": -1}},
                },
            }
        },
        {"$match": {"previous_price": {"$ne": None}}},
    ]


def price_jumps(
    collection: Collection, start_ms: int, end_ms: int, threshold_pct: float
) -> list[dict[str, Any]]:
    """Moves between consecutive ticks of a coin larger than `threshold_pct` (either way)."""
    move = {
        "$multiply": [
            100,
            {"$divide": [{"$subtract": ["$price", "$previous_price"]}, "$previous_price"]},
        ]
    }
    return _rows(
        collection,
        [
            _in_window(start_ms, end_ms),
            *_with_previous_tick(),
            {"$addFields": {"move_pct": move}},
            {"$match": {"$expr": {"$gt": [{"$abs": "$move_pct"}, threshold_pct]}}},
            {
                "$project": {
                    "_id": 0,
                    "symbol": 1,
                    "from_time_ms": "$previous_time_ms",
                    "to_time_ms": "$event_time_ms",
                    "from_price": "$previous_price",
                    "to_price": "$price",
                    "move_pct": 1,
                }
            },
            {"$sort": {"to_time_ms": 1, "symbol": 1}},
        ],
    )


def volatility(
    collection: Collection, start_ms: int, end_ms: int, window: int
) -> list[dict[str, Any]]:
    """Per coin: the sample stddev of log returns over a rolling window of `window` returns.

    `latest` is the window ending at the coin's last tick, `peak` the highest full
    window, `returns` how many log returns the period had.
    """
    return _rows(
        collection,
        [
            _in_window(start_ms, end_ms),
            *_with_previous_tick(),
            {"$addFields": {"log_return": {"$ln": {"$divide": ["$price", "$previous_price"]}}}},
            {
                "$setWindowFields": {
                    "partitionBy": "$symbol",
                    "sortBy": {"event_time_ms": 1},
                    "output": {
                        "rolling": {
                            "$stdDevSamp": "$log_return",
                            "window": {"documents": [1 - window, 0]},
                        },
                        "in_window": {"$count": {}, "window": {"documents": [1 - window, 0]}},
                    },
                }
            },
            {"$sort": {"symbol": 1, "event_time_ms": 1}},
            {
                "$group": {
                    "_id": "$symbol",
                    "returns": {"$sum": 1},
                    "latest": {
                        "$last": {"$cond": [{"$eq": ["$in_window", window]}, "$rolling", None]}
                    },
                    "peak": {
                        "$max": {"$cond": [{"$eq": ["$in_window", window]}, "$rolling", None]}
                    },
                }
            },
            {"$sort": {"_id": 1}},
        ],
    )


def count_by_symbol(collection: Collection, start_ms: int, end_ms: int) -> dict[str, int]:
    """Ticks per coin with event time in the window."""
    pipeline = [_in_window(start_ms, end_ms), {"$group": {"_id": "$symbol", "n": {"$sum": 1}}}]
    return {row["_id"]: row["n"] for row in collection.aggregate(pipeline)}


def newest_event_times(collection: Collection, symbols: list[str], since_ms: int) -> dict[str, int]:
    """Per coin, the event time of its newest tick at or after `since_ms` (absent: none).

    One seek of the `symbol_source_event_time` index per coin and source: a sort on event
    time alone, with the source left open, is not served by that index (the local
    SecantusDB then scanned the whole collection: 29 s over 1,000,000 ticks).
    """
    newest: dict[str, int] = {}
    for symbol in symbols:
        for source in SOURCES:
            found = collection.find_one(
                {"symbol": symbol, "source": source, "event_time_ms": {"$gte": since_ms}},
                {"_id": 0, "event_time_ms": 1},
                sort=[("event_time_ms", -1)],
            )
            if found is not None:
                newest[symbol] = max(newest.get(symbol, 0), int(found["event_time_ms"]))
    return newest


def ingested_since(collection: Collection, since_ms: int) -> bool:
    """Whether any tick was ingested at or after `since_ms`.

    A range on the ingest index with limit 1: cheap on any server. (Sorting by ingest time
    for the newest tick instead scanned the whole collection on the local SecantusDB, for
    seconds per call, and held the sink's writes up meanwhile.)
    """
    found = collection.find({"ingest_time_ms": {"$gte": since_ms}}, {"_id": 1}).limit(1)
    return next(iter(found), None) is not None


def bad_prices(
    collection: Collection, since_ms: int, limit: int = 5
) -> tuple[int, list[dict[str, Any]]]:
    """How many ticks ingested since `since_ms` have a non-positive or non-finite price.

    And the first few of them.
    """
    pipeline = [
        _ingested_since(since_ms),
        {"$match": BAD_PRICE},
        {"$facet": {"count": [{"$count": "n"}],
                    "examples": [{"$limit": limit}, {"$project": {"symbol": 1, "price": 1}}]}},
    ]  # fmt: skip
    result: dict[str, Any] = next(collection.aggregate(pipeline), {})
    counted = result.get("count") or [{"n": 0}]
    return counted[0]["n"], result.get("examples") or []


def counts_since(collection: Collection, since_ms: dict[str, int]) -> dict[str, int]:
    """For each name, the ticks ingested since that time (a range of the `ingest_time` index)."""
    return {
        name: collection.count_documents({"ingest_time_ms": {"$gte": moment}})
        for name, moment in since_ms.items()
    }


def handover_latencies_ms(collection: Collection, since_ms: int, limit: int) -> list[int]:
    """Hand-over time minus `ingest_time_ms` of the newest `limit` ticks ingested since `since_ms`.

    Reads `handed_at_ms`, or `stored_at_ms` in documents stored before the rename.
    """
    handed_at = {"$ifNull": [f"${HANDED_AT}", f"${LEGACY_STORED_AT}"]}
    stamped = [{name: {"$exists": True}} for name in (HANDED_AT, LEGACY_STORED_AT)]
    pipeline: list[dict[str, Any]] = [
        _ingested_since(since_ms),
        {"$match": {"$or": stamped}},
        {"$sort": {"ingest_time_ms": -1}},
        {"$limit": limit},
        {"$project": {"_id": 0, "ms": {"$subtract": [handed_at, "$ingest_time_ms"]}}},
    ]
    return [row["ms"] for row in collection.aggregate(pipeline)]


COLLECTION_STATS = ("documents", "data_size_bytes", "storage_size_bytes", "index_size_bytes")


def collection_stats(collection: Collection) -> dict[str, int] | None:
    """Documents, dataSize, storageSize and indexSize as the server reports them (collStats).

    storageSize and indexSize are the bytes on disk (MongoDB: compressed; SecantusDB
    reports its uncompressed size as storageSize). None when the server took longer than
    `STATS_BUDGET_MS`.
    """
    try:
        stats = collection.database.command("collStats", collection.name, maxTimeMS=STATS_BUDGET_MS)
    except ExecutionTimeout:
        return None
    figures = (stats.get(name, 0) for name in ("count", "size", "storageSize", "totalIndexSize"))
    return {name: int(value) for name, value in zip(COLLECTION_STATS, figures, strict=True)}


def estimated_documents(collection: Collection) -> int | None:
    """The server's count of the collection's documents (None: not within the budget)."""
    try:
        return collection.estimated_document_count(maxTimeMS=STATS_BUDGET_MS)
    except ExecutionTimeout:
        return None
