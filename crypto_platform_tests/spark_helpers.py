"""Deterministic ticks for the Spark tests, and an independent plain-Python reference."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from dataclasses import dataclass

from crypto_platform.candles import INTERVALS
from crypto_platform.defs.resources.clients import CassandraResource, KafkaResource, SparkResource
from crypto_platform.settings import Settings
from crypto_platform.spark.windows import window_starts
from crypto_platform.storage import cassandra, cassandra_queries
from crypto_platform.streaming.producer import TickProducer
from crypto_platform.ticks import Tick

T0_MS = int(dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
COINS = (("BTC", 65_000.0), ("ETH", 3_200.0), ("SOL", 150.0))  # symbol, base price


def deterministic_ticks(
    count_per_symbol: int,
    *,
    start_ms: int = T0_MS,
    step_ms: int = 7_000,
    seed: int = 3,
    source: str = "simulated",
    coins: tuple[tuple[str, float], ...] = COINS,
) -> list[Tick]:
    rng = random.Random(seed)
    ticks = []
    for symbol, base in coins:
        for i in range(count_per_symbol):
            ticks.append(
                Tick.build(
                    source=source,
                    symbol=symbol,
                    price=base * math.exp(rng.gauss(0, 0.02)),
                    event_time_ms=start_ms + i * step_ms + rng.randrange(0, 1000),
                    ingest_time_ms=start_ms + i * step_ms + 1500,
                )
            )
    return ticks


def publish(settings: Settings, ticks: list[Tick]) -> None:
    producer = TickProducer(settings)
    try:
        for tick in ticks:
            producer.send(tick)
    finally:
        producer.close()


@dataclass(frozen=True)
class Expected:
    am: float
    gm: float
    hm: float
    count: int
    min: float
    max: float
    first: float
    last: float


def reference_windows(
    ticks: list[Tick], window_s: int = 300, slide_s: int = 60
) -> dict[tuple[str, str, int], Expected]:
    """Every (symbol, source, window start in s) with its statistics, computed without Spark."""
    members: dict[tuple[str, str, int], list[Tick]] = defaultdict(list)
    for tick in {t.identity: t for t in ticks}.values():
        for start in window_starts(tick.event_time_ms, window_s, slide_s):
            members[(tick.symbol, tick.source, start)].append(tick)
    expected = {}
    for key, window in members.items():
        prices = [t.price for t in window]
        ordered = sorted(window, key=lambda t: t.event_time_ms)
        n = len(prices)
        expected[key] = Expected(
            am=math.fsum(prices) / n,
            gm=math.exp(math.fsum(math.log(p) for p in prices) / n),
            hm=n / math.fsum(1 / p for p in prices),
            count=n,
            min=min(prices),
            max=max(prices),
            first=ordered[0].price,
            last=ordered[-1].price,
        )
    return expected


def stored_windows(settings: Settings, ticks: list[Tick]) -> dict[tuple[str, str, int], dict]:
    """Every row of aggregates_by_symbol for the ticks' symbols, sources and days."""
    days = {
        dt.datetime.fromtimestamp(t.event_time_ms / 1000 + offset, dt.UTC).strftime("%Y-%m-%d")
        for t in ticks
        for offset in (-300, 0)
    }
    series = {(t.symbol, t.source) for t in ticks}
    cluster, session = cassandra.connect(settings)
    try:
        rows = {}
        for symbol, source in series:
            for day in days:
                for row in cassandra_queries.aggregate_windows(
                    session, settings.cassandra_keyspace, symbol, source,
                    settings.aggregate_window_s, day,
                ):  # fmt: skip
                    start = int(row["window_start"].replace(tzinfo=dt.UTC).timestamp())
                    rows[(symbol, source, start)] = row
        return rows
    finally:
        cluster.shutdown()


def reference_candles(
    ticks: list[Tick], intervals: tuple[str, ...] = tuple(INTERVALS)
) -> dict[tuple[str, str, str, int], tuple[float, float, float, float, int]]:
    """(symbol, source, interval, start ms) -> (open, high, low, close, count), without Spark."""
    members: dict[tuple[str, str, str, int], list[Tick]] = defaultdict(list)
    for tick in {t.identity: t for t in ticks}.values():
        for interval in intervals:
            start = tick.event_time_ms - tick.event_time_ms % INTERVALS[interval]
            members[(tick.symbol, tick.source, interval, start)].append(tick)
    expected = {}
    for key, candle in members.items():
        ordered = sorted(candle, key=lambda t: t.event_time_ms)
        prices = [t.price for t in candle]
        expected[key] = (ordered[0].price, max(prices), min(prices), ordered[-1].price, len(prices))
    return expected


def stored_candles(
    settings: Settings, ticks: list[Tick]
) -> dict[tuple[str, str, str, int], tuple[float, float, float, float, int]]:
    """The candles table's rows of the ticks' coins, sources and span, as `reference_candles`."""
    since = min(t.event_time_ms for t in ticks) - INTERVALS["1d"]
    until = max(t.event_time_ms for t in ticks) + 1
    cluster, session = cassandra.connect(settings)
    try:
        return {
            (symbol, source, interval, row["start"]): (
                row["open"], row["high"], row["low"], row["close"], row["tick_count"]
            )
            for symbol, source in {(t.symbol, t.source) for t in ticks}
            for interval in INTERVALS
            for row in cassandra_queries.candles(
                session, settings.cassandra_keyspace, (symbol, source), interval, since, until
            )
        }  # fmt: skip
    finally:
        cluster.shutdown()


def count_rows(settings: Settings, table: str) -> int:
    cluster, session = cassandra.connect(settings)
    try:
        return session.execute(f"SELECT count(*) FROM {settings.cassandra_keyspace}.{table}").one()[
            0
        ]
    finally:
        cluster.shutdown()


def assert_matches(stored: dict, expected: dict[tuple[str, str, int], Expected]) -> None:
    assert set(stored) == set(expected)
    for key, want in expected.items():
        row = stored[key]
        for column, value in (
            ("arithmetic_mean", want.am),
            ("geometric_mean", want.gm),
            ("harmonic_mean", want.hm),
            ("min_price", want.min),
            ("max_price", want.max),
            ("first_price", want.first),
            ("last_price", want.last),
        ):
            assert math.isclose(row[column], value, rel_tol=1e-9), (key, column, row[column], value)
        assert row["tick_count"] == want.count, key


def aggregation_resources(settings: Settings) -> dict[str, object]:
    """What `spark_aggregation` needs to run on the test stack, in the shared local session."""
    return {
        "kafka": KafkaResource(
            bootstrap_servers=settings.kafka_bootstrap_servers, topic=settings.kafka_topic
        ),
        "cassandra": CassandraResource(
            port=settings.cassandra_port, keyspace=settings.cassandra_keyspace
        ),
        "spark": SparkResource(master="local[2]"),
    }
