"""The Spark catch-up's bare baseline: the same ticks read and written by the bare clients.

kafka-python reads every message of the topic (no group) and decodes its JSON;
cassandra-driver writes the raw prices into a `prices_by_symbol` made by the project's
own schema code, in unlogged batches of up to 100 rows of one partition each (the
statements the job sends too), 32 in flight. That is the
least work that moves the ticks from Kafka into Cassandra's price table: what the
catch-up is compared with (it also validates every tick and keeps the windowed means).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from cassandra.concurrent import execute_concurrent

from crypto_platform.bench.fixtures import bare_polls
from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import (
    CONCURRENCY,
    PRICE_COLUMNS,
    insert_cql,
    partition_batches,
)
from crypto_platform.storage import cassandra


def bare_catch_up(settings: Settings, count: int) -> dict[str, Any]:
    """Rows per second of reading, of writing, and of the whole path, for `count` ticks."""
    keyspace = f"{settings.cassandra_keyspace}_bare"
    cluster, session = cassandra.connect(settings)
    try:
        cassandra.ensure_schema(session, keyspace)
        insert = session.prepare(insert_cql(keyspace, "prices_by_symbol", PRICE_COLUMNS))
        read_s = write_s = 0.0
        started = mark = time.perf_counter()
        for records in bare_polls(settings, count):
            by_key: dict[tuple[str, str], list[tuple]] = defaultdict(list)
            for record in records:
                tick = json.loads(record.value)
                day = time.strftime("%Y-%m-%d", time.gmtime(tick["event_time_ms"] // 1000))
                by_key[(tick["symbol"], day)].append(
                    (tick["symbol"], day, tick["event_time_ms"], tick["source"], tick["price"],
                     tick.get("quote"), tick["ingest_time_ms"])
                )  # fmt: skip
            now = time.perf_counter()
            read_s, mark = read_s + now - mark, now
            execute_concurrent(
                session,
                partition_batches(insert, by_key.values()),
                concurrency=CONCURRENCY,
                raise_on_first_error=True,
            )
            now = time.perf_counter()
            write_s, mark = write_s + now - mark, now
        elapsed = time.perf_counter() - started
    finally:
        cluster.shutdown()
    return {
        "ticks": count,
        "seconds": round(elapsed, 2),
        "read_per_s": round(count / read_s),
        "write_per_s": round(count / write_s),
        "combined_per_s": round(count / elapsed),
    }
