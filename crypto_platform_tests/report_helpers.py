"""A known tick set for the report and check tests, and plain-Python references for it."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections import defaultdict

from crypto_platform.ticks import Tick, now_ms

# BTC moves 0.1 or 0.2 % a tick except at the planted jumps; ETH alternates ±0.5 %; SOL has 3 ticks.
JUMPS = {("BTC", 40): 3.0, ("BTC", 70): -2.0}
BTC_TICKS, ETH_TICKS = 100, 80
STEP_MS = 20_000


def hour_start(hours_ago: int) -> dt.datetime:
    """The start of the UTC hour `hours_ago` hours before the current one."""
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return now - dt.timedelta(hours=hours_ago)


def planted_ticks(hour: dt.datetime) -> list[Tick]:
    """Ticks inside `hour`, with jumps where `JUMPS` says; ingested now, as a producer would."""
    start_ms = int(hour.timestamp() * 1000)
    ingest = now_ms()
    ticks: list[Tick] = []

    def add(symbol: str, i: int, price: float) -> None:
        ticks.append(
            Tick.build(source="simulated", symbol=symbol, price=price,
                       event_time_ms=start_ms + 1000 + i * STEP_MS, ingest_time_ms=ingest)
        )  # fmt: skip

    price = 60_000.0
    for i in range(BTC_TICKS):
        if i:
            price *= 1 + JUMPS.get(("BTC", i), 0.1 + 0.1 * (i % 2)) / 100
        add("BTC", i, price)
    price = 3_000.0
    for i in range(ETH_TICKS):
        if i:
            price *= 1.005 if i % 2 else 1 / 1.005
        add("ETH", i, price)
    for i, value in enumerate((150.0, 151.0, 149.5)):
        add("SOL", i, value)
    return ticks


def by_symbol(ticks: list[Tick]) -> dict[str, list[Tick]]:
    grouped: dict[str, list[Tick]] = defaultdict(list)
    for tick in sorted(ticks, key=lambda t: t.event_time_ms):
        grouped[tick.symbol].append(tick)
    return grouped


def reference_statistics(ticks: list[Tick]) -> dict[str, dict[str, float]]:
    out = {}
    for symbol, group in by_symbol(ticks).items():
        prices = [t.price for t in group]
        out[symbol] = {
            "count": len(prices),
            "open": prices[0],
            "high": max(prices),
            "low": min(prices),
            "close": prices[-1],
            "mean": statistics.fmean(prices),
            "stddev": statistics.stdev(prices),
            "change_pct": (prices[-1] - prices[0]) / prices[0] * 100,
        }
    return out


def reference_volatility(ticks: list[Tick], window: int) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for symbol, group in by_symbol(ticks).items():
        returns = [math.log(b.price / a.price) for a, b in itertools.pairwise(group)]
        rolling = [
            statistics.stdev(returns[i - window + 1 : i + 1])
            for i in range(window - 1, len(returns))
        ]
        out[symbol] = {
            "returns": len(returns),
            "latest": rolling[-1] if rolling else None,
            "peak": max(rolling) if rolling else None,
        }
    return out
