"""The MongoDB sink reports how far in event time it has stored: what settles an hour.

Its progress (recorded on mongo/prices by persist_prices) carries the newest event time
stored, the figure the `settled_hours` sensor reads.
"""

from __future__ import annotations

import threading

from crypto_platform.defs.streams.sensors import NEWEST_STORED
from crypto_platform.settings import Settings
from crypto_platform.streaming.progress import Progress, Snapshot
from crypto_platform.streaming.sink import MongoSink, run_sink
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.spark_helpers import publish


def test_the_sink_reports_the_newest_event_time_it_stored(settings: Settings) -> None:
    now = now_ms()
    # Out of event-time order, as sources and partitions deliver them.
    batch = [
        Tick(source="simulated", symbol=symbol, price=100.0, event_time_ms=now - age_ms,
             ingest_time_ms=now)
        for symbol, age_ms in (("BTC", 3000), ("ETH", 1000), ("SOL", 5000), ("BTC", 2000))
    ]  # fmt: skip
    publish(settings, batch)
    reports: list[Snapshot] = []

    sink = MongoSink(settings)
    try:
        run_sink(sink, threading.Event(), max_messages=len(batch),
                 progress=Progress("sink", reports.append, every=1e9))  # fmt: skip
    finally:
        sink.close()
    restarted = MongoSink(settings)  # its position, before it polls: what MongoDB holds
    restarted.close()

    assert reports[-1][NEWEST_STORED] == now - 1000
    assert restarted.stats.newest_stored_event_ms == now - 1000
