"""Coinranking's history: `/coin/{uuid}/history?timePeriod=...`, counted back from now only.

The periods grow coarser the longer they are, and none can be asked for a span long ago
at the granularity of a recent one: the smallest period that reaches back to the gap's
start is asked, and if its points are further apart than the gap detection allows, the
points in the gap are still sent but the gap is marked unrepairable, saying why. So
Coinranking's gaps are best backfilled soon after they happen.
"""

from __future__ import annotations

import statistics
from itertools import pairwise
from typing import Any

from pymongo import DESCENDING
from pymongo.collection import Collection

from crypto_platform.completeness.gaps import LOOKBACK_MS, Gap
from crypto_platform.completeness.history.model import (
    History,
    backfilled_tick,
    inside,
    too_coarse,
    valid_ticks,
    widest_spacing_ms,
)
from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.sources.http import ResilientHttp, SourceUnavailable
from crypto_platform.ticks import now_ms

__all__ = ["PERIODS", "CoinrankingHistory", "history_points", "period_for"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# timePeriod values Coinranking takes, shortest first, with how far back each reaches.
PERIODS = (
    ("1h", HOUR_MS), ("3h", 3 * HOUR_MS), ("12h", 12 * HOUR_MS), ("24h", DAY_MS),
    ("7d", 7 * DAY_MS), ("30d", 30 * DAY_MS), ("3m", 90 * DAY_MS), ("1y", 365 * DAY_MS),
    ("3y", 3 * 365 * DAY_MS), ("5y", 5 * 365 * DAY_MS),
)  # fmt: skip


def period_for(start_ms: int, now: int) -> str | None:
    """The shortest period that reaches back to `start_ms`; None beyond the longest."""
    for name, length_ms in PERIODS:
        if now - length_ms <= start_ms:
            return name
    return None


def history_points(payload: Any) -> tuple[list[tuple[int, Any]], int]:
    """(timestamp ms, price) of each point with a price, oldest first; and how many had none."""
    data = payload.get("data") if isinstance(payload, dict) else None
    points = data.get("history") if isinstance(data, dict) else None
    if not isinstance(points, list):
        raise SourceUnavailable("coinranking: history payload has no data.history list")
    kept = [
        (int(point["timestamp"]) * 1000, point["price"])
        for point in points
        if isinstance(point, dict)
        and isinstance(point.get("timestamp"), int)
        and point.get("price") is not None
    ]
    return sorted(kept), len(points) - len(kept)


def spacing_ms(times: list[int], period_ms: int) -> int:
    """The history's granularity: the median spacing of its points (one point: the period)."""
    steps = [b - a for a, b in pairwise(times) if b > a]
    return int(statistics.median(steps)) if steps else period_ms


class CoinrankingHistory:
    """A coin's price history; its uuid from the tick before the gap, else from `/coins`."""

    def __init__(self, settings: Settings, prices: Collection) -> None:
        key = settings.coinranking_api_key
        headers = {"x-access-token": key.get_secret_value()} if key else {}
        self.settings = settings
        self.prices = prices
        self.http = ResilientHttp("coinranking", settings.coinranking_base_url, headers=headers)
        self._uuids: dict[str, str] = {}

    def fetch(self, gap: Gap) -> History:
        now = now_ms()
        period = period_for(gap.start_ms, now)
        if period is None:
            return History([], 0, "Coinranking's history reaches back 5 years; the gap is older")
        uuid = self._uuid(gap)
        payload = self.http.get_json(f"/coin/{uuid}/history", {"timePeriod": period})
        points, nulls = history_points(payload)
        ticks, skipped = valid_ticks(
            points,
            lambda point: backfilled_tick(gap, point[1], point[0], now, quote="USD", uuid=uuid),
            f"coinranking history of {gap.symbol}",
        )
        granularity = spacing_ms([t.event_time_ms for t in ticks], dict(PERIODS)[period])
        history = f"Coinranking's {period} history"
        reason = too_coarse(history, granularity, widest_spacing_ms(self.settings, gap.source))
        filled = inside(gap, ticks)
        if not filled:
            reason = reason or f"{history} has no point in the span"
        return History(filled, granularity, reason, nulls + skipped)

    def _uuid(self, gap: Gap) -> str:
        """The coin's Coinranking id: the latest tick before the gap has it; else `/coins`."""
        if gap.symbol not in self._uuids:
            before = self.prices.find_one(
                {
                    "symbol": gap.symbol,
                    "source": gap.source,
                    "event_time_ms": {"$gte": gap.start_ms - LOOKBACK_MS, "$lt": gap.start_ms},
                    "uuid": {"$type": "string"},
                },
                {"uuid": 1},
                sort=[("event_time_ms", DESCENDING)],
            )
            self._uuids[gap.symbol] = before["uuid"] if before else self._listed_uuid(gap.symbol)
        return self._uuids[gap.symbol]

    def _listed_uuid(self, symbol: str) -> str:
        """The highest-ranked coin with the symbol, as the live source picks it."""
        payload = self.http.get_json("/coins", [("symbols[]", symbol), ("limit", "100")])
        data = payload.get("data") if isinstance(payload, dict) else None
        coins = data.get("coins") if isinstance(data, dict) else None
        for coin in coins if isinstance(coins, list) else []:
            if (
                isinstance(coin, dict)
                and str(coin.get("symbol", "")).upper() == symbol
                and isinstance(coin.get("uuid"), str)
            ):
                return coin["uuid"]
        raise PlatformError(f"Coinranking lists no coin {symbol}: check CRYPTO_SYMBOLS")

    def close(self) -> None:
        self.http.close()
