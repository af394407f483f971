"""The simulator's history: a gap's ticks regenerated, the same ones every time.

The simulator keeps no history, but it is a seeded random walk, so a gap can be given a
walk of its own: a Brownian bridge in log price from the tick before the gap to the tick
after it (a free walk when none has come since), at the coin's simulated volatility, one
tick per cadence. Seeded by the gap's source, coin and start, a re-run regenerates the same
ticks (same identities, same prices), which the store keeps once.
"""

from __future__ import annotations

import hashlib
import math
import random

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection

from crypto_platform.completeness.gaps import LOOKBACK_MS, Gap
from crypto_platform.completeness.history.model import History, backfilled_tick
from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.sources.simulated import SECONDS_PER_YEAR, START_PRICES
from crypto_platform.ticks import now_ms

__all__ = ["SimulatedHistory", "bridge", "seed_of"]

# What the simulator gives a coin it has no start price for (sources/simulated.py).
DEFAULT_VOLATILITY = 0.8
MS_PER_YEAR = SECONDS_PER_YEAR * 1000

Anchor = tuple[int, float]  # (event time ms, price)


def seed_of(gap: Gap) -> int:
    """The gap's own seed: its source, coin and start, hashed (stable across processes)."""
    digest = hashlib.sha256(f"{gap.source}:{gap.symbol}:{gap.start_ms}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def bridge(
    times: list[int], before: Anchor, after: Anchor | None, volatility: float, seed: int
) -> list[float]:
    """Prices at `times` (after `before`, before `after`): a seeded bridge in log price.

    Without `after`, a geometric Brownian motion from `before`, as the simulator walks.
    """
    rng = random.Random(seed)
    ends = [*times, after[0]] if after else times
    walk, level, last = [], 0.0, before[0]
    for at in ends:  # a driftless walk in log price, sd volatility * sqrt(years)
        years = (at - last) / MS_PER_YEAR
        level += volatility * math.sqrt(years) * rng.gauss(0.0, 1.0)
        walk.append(level)
        last = at
    start = math.log(before[1])
    if after is None:
        drift = -0.5 * volatility**2 / MS_PER_YEAR
        return [
            math.exp(start + w + drift * (t - before[0])) for t, w in zip(times, walk, strict=True)
        ]
    span, end_walk = after[0] - before[0], walk[-1]
    rise = math.log(after[1]) - start - end_walk
    return [
        math.exp(start + w + rise * (t - before[0]) / span)
        for t, w in zip(times, walk[:-1], strict=True)
    ]


class SimulatedHistory:
    """Regenerates a simulated gap between its neighbouring ticks in MongoDB."""

    def __init__(self, settings: Settings, prices: Collection) -> None:
        self.settings = settings
        self.prices = prices

    def fetch(self, gap: Gap) -> History:
        cadence_ms = int(self.settings.gap_cadence_s[gap.source] * 1000)
        before, after = self._neighbours(gap)
        times = list(range(before[0] + cadence_ms, gap.end_ms, cadence_ms))
        volatility = START_PRICES.get(gap.symbol, (0.0, DEFAULT_VOLATILITY))[1]
        prices = bridge(times, before, after, volatility, seed_of(gap))
        made = now_ms()
        ticks = [
            backfilled_tick(gap, price, at, made) for at, price in zip(times, prices, strict=True)
        ]
        return History(ticks, cadence_ms)

    def _neighbours(self, gap: Gap) -> tuple[Anchor, Anchor | None]:
        """The last tick before the gap and the first at or after its end (if any yet)."""
        query = {"symbol": gap.symbol, "source": gap.source}
        fields = {"event_time_ms": 1, "price": 1}
        before = self.prices.find_one(
            {**query, "event_time_ms": {"$gte": gap.start_ms - LOOKBACK_MS, "$lt": gap.start_ms}},
            fields,
            sort=[("event_time_ms", DESCENDING)],
        )
        if before is None:
            raise PlatformError(
                f"simulated {gap.symbol}: no tick before the gap to regenerate it from"
            )
        after = self.prices.find_one(
            {**query, "event_time_ms": {"$gte": gap.end_ms}},
            fields,
            sort=[("event_time_ms", ASCENDING)],
        )
        anchor = (int(before["event_time_ms"]), float(before["price"]))
        if after is None:
            return anchor, None
        return anchor, (int(after["event_time_ms"]), float(after["price"]))

    def close(self) -> None:
        """Nothing of its own to release: it reads through the backfill's MongoDB client."""
