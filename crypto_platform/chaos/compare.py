"""Tick by tick: what the broker acknowledged against what MongoDB and Cassandra hold.

The ground truth is the whole tick topic read after the run: the producer sends with
acks=all, so every message the broker holds was acknowledged, and nothing else was. A
tick is known by its identity (source, symbol, event time); it is lost from a store when
the topic has it and the store does not, duplicated when the store holds it more than
once. Each aggregates_by_symbol window must count exactly the distinct topic ticks in it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from crypto_platform.settings import Settings
from crypto_platform.spark.windows import window_starts
from crypto_platform.storage import cassandra, cassandra_queries, mongo
from crypto_platform.streaming.topics import read_to_end
from crypto_platform.ticks import InvalidTick, Tick

log = logging.getLogger(__name__)

TickKey = tuple[str, str, int]  # source, symbol, event_time_ms: the tick's identity
WindowKey = tuple[str, int]  # symbol, window start (epoch s)
EXAMPLES = 5
READ_TIMEOUT_S = 600.0  # the whole topic of a long run, on a busy machine


@dataclass
class Ledger:
    """Every distinct tick in the topic with its ingest time, and how often each was sent."""

    ingest_ms: dict[TickKey, int] = field(default_factory=dict)
    messages: int = 0
    invalid: int = 0
    resent: Counter[TickKey] = field(default_factory=Counter)


def read_topic(settings: Settings) -> Ledger:
    """Read the tick topic from its beginning to its end offsets."""
    records = read_to_end(
        settings, settings.kafka_topic, timeout_s=READ_TIMEOUT_S, client_id="crypto-chaos-ledger"
    )
    return ledger_of(record.value for record in records)


def ledger_of(values: Iterable[bytes | None]) -> Ledger:
    """The ledger of a topic's message values, in the order they were read."""
    ledger = Ledger()
    for value in values:
        ledger.messages += 1
        try:
            tick = Tick.from_json(value)
        except InvalidTick:
            ledger.invalid += 1
            continue
        key = (tick.source, tick.symbol, tick.event_time_ms)
        if key in ledger.ingest_ms:
            ledger.resent[key] += 1
        ledger.ingest_ms[key] = tick.ingest_time_ms
    return ledger


def mongo_copies(settings: Settings) -> Counter[TickKey]:
    """How many documents MongoDB holds of each tick (by its fields, not only its `_id`)."""
    copies: Counter[TickKey] = Counter()
    with mongo.connect(settings) as client:
        fields = {"source": 1, "symbol": 1, "event_time_ms": 1}
        for doc in mongo.prices_collection(client, settings).find({}, fields).batch_size(10_000):
            copies[(doc["source"], doc["symbol"], doc["event_time_ms"])] += 1
    return copies


def _days(first_ms: int, last_ms: int) -> list[str]:
    return cassandra_queries.days_between(first_ms, last_ms + 1)


def cassandra_copies(settings: Settings, ledger: Ledger) -> Counter[TickKey]:
    """How many prices_by_symbol rows hold each tick, over every partition the ticks touch."""
    copies: Counter[TickKey] = Counter()
    times = [key[2] for key in ledger.ingest_ms]
    cluster, session = cassandra.connect(settings)
    try:
        for symbol in sorted({key[1] for key in ledger.ingest_ms}):
            for day in _days(min(times), max(times)):
                for source, event_ms in cassandra_queries.price_keys(
                    session, settings.cassandra_keyspace, symbol, day
                ):
                    copies[(source, symbol, event_ms)] += 1
    finally:
        cluster.shutdown()
    return copies


@dataclass(frozen=True)
class StoreCheck:
    """One store against the topic."""

    lost: set[TickKey]
    duplicated: dict[TickKey, int]  # tick -> copies beyond the first
    unknown: int  # stored ticks the topic never held

    def summary(self) -> dict[str, object]:
        return {
            "lost": len(self.lost),
            "duplicated": sum(self.duplicated.values()),
            "not_in_topic": self.unknown,
            "lost_examples": [":".join(map(str, key)) for key in sorted(self.lost)[:EXAMPLES]],
        }


def check_store(ledger: Ledger, copies: Counter[TickKey]) -> StoreCheck:
    return StoreCheck(
        lost={key for key in ledger.ingest_ms if copies[key] == 0},
        duplicated={key: n - 1 for key, n in copies.items() if n > 1},
        unknown=sum(1 for key in copies if key not in ledger.ingest_ms),
    )


@dataclass(frozen=True)
class WindowCheck:
    """aggregates_by_symbol against the topic's distinct ticks per window."""

    checked: int
    wrong: list[tuple[WindowKey, int | None, int]]  # window, stored count (None: no row), topic

    def summary(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "wrong": len(self.wrong),
            "wrong_examples": [
                {
                    "symbol": symbol,
                    "window_start": dt.datetime.fromtimestamp(start, dt.UTC).isoformat(),
                    "stored": stored,
                    "expected": expected,
                }
                for (symbol, start), stored, expected in self.wrong[:EXAMPLES]
            ],
        }


def check_windows(settings: Settings, ledger: Ledger) -> WindowCheck:
    """Every window a topic tick falls in must have a row counting exactly its ticks.

    The job writes windows in update mode, so a window still open when the run ends has
    a row counting the ticks so far; the final available-now pass has seen every tick, so
    no window is left out of the check.
    """
    window_s, slide_s = settings.aggregate_window_s, settings.aggregate_slide_s
    expected = expected_windows(ledger, window_s, slide_s)
    stored: dict[WindowKey, int] = {}
    starts = [start for _, start in expected]
    cluster, session = cassandra.connect(settings)
    try:
        for symbol in sorted({symbol for symbol, _ in expected}):
            for day in _days(min(starts) * 1000, max(starts) * 1000):
                for row in cassandra_queries.aggregate_windows(
                    session, settings.cassandra_keyspace, symbol, window_s, day
                ):
                    start = int(row["window_start"].replace(tzinfo=dt.UTC).timestamp())
                    stored[(symbol, start)] = row["tick_count"]
    finally:
        cluster.shutdown()
    return compare_windows(expected, stored)


def expected_windows(ledger: Ledger, window_s: int, slide_s: int) -> Counter[WindowKey]:
    """How many distinct topic ticks each (symbol, window start) holds."""
    expected: Counter[WindowKey] = Counter()
    for _, symbol, event_ms in ledger.ingest_ms:
        for start in window_starts(event_ms, window_s, slide_s):
            expected[(symbol, start)] += 1
    return expected


def compare_windows(expected: Counter[WindowKey], stored: dict[WindowKey, int]) -> WindowCheck:
    """Every window either side holds; wrong where the stored count (None: no row) differs."""
    wrong = [
        (window, stored.get(window), expected[window])
        for window in sorted(set(expected) | set(stored))
        if stored.get(window) != expected[window]
    ]
    return WindowCheck(len(set(expected) | set(stored)), wrong)
