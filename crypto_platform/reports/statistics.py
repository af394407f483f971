"""Price statistics, jumps and volatility of one period (an hour, for the Dagster partitions).

Thin over `storage.mongo_queries`: the server computes; this names the period and
shapes the rows. Usable from the CLI (`crypto-platform report statistics`) and Dagster.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from crypto_platform.reports.stores import Stores
from crypto_platform.storage import mongo_queries

DEFAULT_JUMP_THRESHOLD_PCT = 1.0
DEFAULT_VOLATILITY_WINDOW = 20


@dataclass(frozen=True)
class Period:
    """A half-open window `[start, end)` in UTC."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def hour(cls, start: dt.datetime) -> Period:
        start = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        return cls(start, start + dt.timedelta(hours=1))

    @classmethod
    def last_closed_hour(cls, now: dt.datetime | None = None) -> Period:
        now = now or dt.datetime.now(dt.UTC)
        return cls.hour(now - dt.timedelta(hours=1))

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def price_statistics(stores: Stores, period: Period) -> list[dict[str, Any]]:
    """Per coin: count, open, high, low, close, mean, stddev, change %."""
    return mongo_queries.price_statistics(stores.prices, period.start_ms, period.end_ms)


def price_jumps(
    stores: Stores, period: Period, threshold_pct: float = DEFAULT_JUMP_THRESHOLD_PCT
) -> list[dict[str, Any]]:
    """Moves between consecutive ticks of a coin above `threshold_pct` percent."""
    return mongo_queries.price_jumps(stores.prices, period.start_ms, period.end_ms, threshold_pct)


def volatility(
    stores: Stores, period: Period, window: int = DEFAULT_VOLATILITY_WINDOW
) -> list[dict[str, Any]]:
    """Per coin: rolling stddev of log returns over `window` returns (latest and peak)."""
    if window < 2:
        raise ValueError("the volatility window needs at least 2 returns")
    return mongo_queries.volatility(stores.prices, period.start_ms, period.end_ms, window)


def statistics_report(
    stores: Stores,
    period: Period,
    *,
    threshold_pct: float = DEFAULT_JUMP_THRESHOLD_PCT,
    window: int = DEFAULT_VOLATILITY_WINDOW,
) -> dict[str, Any]:
    """All three for one period, as `crypto-platform report statistics` prints them."""
    return {
        "period": period.as_dict(),
        "statistics": price_statistics(stores, period),
        "jumps": {
            "threshold_pct": threshold_pct,
            "rows": price_jumps(stores, period, threshold_pct),
        },
        "volatility": {"window": window, "rows": volatility(stores, period, window)},
    }
