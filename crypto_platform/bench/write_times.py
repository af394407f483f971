"""When the Spark job wrote each price into Cassandra, read back as the cells' WRITETIME.

`prices_by_symbol` rows carry no timestamp of their own making: their write time is the
one the Cassandra driver stamps on each batch as the job sends it (microseconds), so
`WRITETIME(price)` minus the tick's `ingest_time` is how long a tick took from the
source to its write, measured after the run at no cost to the job.
"""

from __future__ import annotations

import datetime as dt
import time

from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra


def write_latencies_ms(settings: Settings) -> list[float]:
    """Ingest time to Cassandra write time (ms) of every row in the keyspace's prices_by_symbol."""
    cluster, session = cassandra.connect(settings)
    try:
        table = f"{settings.cassandra_keyspace}.prices_by_symbol"
        rows = session.execute(f"SELECT ingest_time, WRITETIME(price) FROM {table}")
        return [
            written_us / 1000 - ingested.replace(tzinfo=dt.UTC).timestamp() * 1000
            for ingested, written_us in rows
        ]
    finally:
        cluster.shutdown()


def wait_for_rows(settings: Settings, count: int, timeout_s: float) -> int:
    """Wait until prices_by_symbol holds `count` rows, or `timeout_s` passed; the rows held."""
    cluster, session = cassandra.connect(settings)
    table = f"{settings.cassandra_keyspace}.prices_by_symbol"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            held = session.execute(f"SELECT COUNT(*) FROM {table}", timeout=30).one()[0]
            if held >= count or time.monotonic() >= deadline:
                return int(held)
            time.sleep(1)
    finally:
        cluster.shutdown()
