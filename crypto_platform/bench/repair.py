"""The repair's speed: a span of ticks already in MongoDB recomputed into Cassandra.

Beside the bare path over the same ticks in the same run: pymongo reads them (a range of
`event_time_ms`, the fields Cassandra's price table holds) and cassandra-driver writes
them into a `prices_by_symbol` made by the project's own schema code, in unlogged batches
of one partition each, as many in flight as the job's writer. That is the least work that
moves the ticks from MongoDB into Cassandra; the repair also sorts them per coin,
recomputes every window over them and writes those too.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from typing import Any

from cassandra.concurrent import execute_concurrent

from crypto_platform.bench.fixtures import simulated_stream
from crypto_platform.completeness.repair import repair
from crypto_platform.provision import provision
from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import (
    CONCURRENCY,
    PRICE_COLUMNS,
    day_of,
    insert_cql,
    partition_batches,
)
from crypto_platform.storage import cassandra, mongo

INSERT_BATCH = 10_000


def repair_beside_bare(settings: Settings, count: int, symbol_list: list[str]) -> dict[str, Any]:
    """Ticks per second of the repair and of the bare read-and-write, over `count` ticks."""
    tag = f"repair_{int(time.time())}"
    scratch = settings.model_copy(
        update={
            "mongo_database": f"{settings.mongo_database}_{tag}",
            "cassandra_keyspace": f"{settings.cassandra_keyspace}_{tag}",
        }
    )
    provision(scratch, ("mongodb", "cassandra"))
    try:
        since, until = _load(scratch, count, symbol_list)
        bare = _bare(scratch, since, until)
        stats = repair(scratch, since, until, progress=lambda _line: None)
    finally:
        _drop(scratch)
    ours = round(stats.ticks_read / stats.seconds)
    return {
        "ticks": count,
        "ours_per_s": ours,
        "windows_written": stats.windows_written,
        "seconds": round(stats.seconds, 2),
        "bare_per_s": bare,
        "ratio": round(ours / bare, 3),
    }


def _load(settings: Settings, count: int, symbol_list: list[str]) -> tuple[int, int]:
    """Insert `count` simulated ticks into MongoDB straight; return their span [since, until)."""
    client = mongo.connect(settings)
    first, last = None, 0
    try:
        prices = mongo.prices_collection(client, settings)
        ticks = simulated_stream(count, symbol_list)
        while batch := list(itertools.islice(ticks, INSERT_BATCH)):
            prices.insert_many([tick.to_document() for tick in batch], ordered=False)
            times = [tick.event_time_ms for tick in batch]
            first = min(times) if first is None else min(first, *times)
            last = max(last, *times)
    finally:
        client.close()
    return first or 0, last + 1


def _bare(settings: Settings, since: int, until: int) -> int:
    """Rows per second of a bare pymongo read plus a cassandra-driver write of them."""
    keyspace = f"{settings.cassandra_keyspace}_bare"
    client = mongo.connect(settings)
    cluster, session = cassandra.connect(settings)
    try:
        cassandra.ensure_schema(session, keyspace)
        insert = session.prepare(insert_cql(keyspace, "prices_by_symbol", PRICE_COLUMNS))
        started = time.perf_counter()
        fields = {"_id": 0, "symbol": 1, "event_time_ms": 1, "source": 1, "price": 1,
                  "quote": 1, "ingest_time_ms": 1}  # fmt: skip
        cursor = mongo.prices_collection(client, settings).find(
            {"event_time_ms": {"$gte": since, "$lt": until}}, fields
        )
        rows = 0
        while batch := list(itertools.islice(cursor, INSERT_BATCH)):
            by_key: dict[tuple[str, str], list[tuple]] = defaultdict(list)
            for t in map(mongo.plain_ints, batch):
                day = day_of(t["event_time_ms"])
                by_key[(t["symbol"], day)].append(
                    (t["symbol"], day, t["event_time_ms"], t["source"], t["price"],
                     t.get("quote"), t["ingest_time_ms"])
                )  # fmt: skip
            execute_concurrent(
                session, partition_batches(insert, by_key.values()), concurrency=CONCURRENCY,
                raise_on_first_error=True,
            )  # fmt: skip
            rows += len(batch)
        elapsed = time.perf_counter() - started
    finally:
        cluster.shutdown()
        client.close()
    return round(rows / elapsed)


def _drop(settings: Settings) -> None:
    client = mongo.connect(settings)
    cluster, session = cassandra.connect(settings)
    try:
        client.drop_database(settings.mongo_database)
        for keyspace in (settings.cassandra_keyspace, f"{settings.cassandra_keyspace}_bare"):
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    finally:
        cluster.shutdown()
        client.close()
