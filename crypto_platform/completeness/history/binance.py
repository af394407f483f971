"""Binance's history (for `binance` and `binance-ws` gaps): klines from `/api/v3/klines`.

A kline becomes a tick priced at its close, at its close time (the last millisecond of its
interval). 1-second klines are asked first; for a span where Binance has none, 1-minute
ones, which fill a gap only if the source's cadence allows ticks a minute apart. Pages of
`KLINE_LIMIT`; each request weighs `KLINE_WEIGHT` against the minute's budget
(`WeightBudget`), and a 429 or 418 is waited out as its Retry-After says (`ResilientHttp`).
"""

from __future__ import annotations

from typing import Any

from crypto_platform.completeness.gaps import Gap
from crypto_platform.completeness.history.model import (
    History,
    backfilled_tick,
    duration,
    inside,
    too_coarse,
    valid_ticks,
    widest_spacing_ms,
)
from crypto_platform.completeness.history.weight import WeightBudget
from crypto_platform.settings import Settings
from crypto_platform.sources.binance import QUOTE, market
from crypto_platform.sources.http import ResilientHttp, SourceUnavailable
from crypto_platform.ticks import InvalidTick, Tick, now_ms

__all__ = ["INTERVALS", "KLINES", "BinanceHistory", "kline_tick"]

KLINES = "/api/v3/klines"
KLINE_LIMIT = 1000  # klines per request, Binance's maximum
KLINE_WEIGHT = 2
INTERVALS = (("1s", 1_000), ("1m", 60_000))  # tried in this order


def kline_tick(kline: Any, gap: Gap, fetched_ms: int) -> Tick:
    """[openTime, open, high, low, close, volume, closeTime, ...] -> the close at closeTime."""
    if not isinstance(kline, list) or len(kline) < 7:
        raise InvalidTick("kline: not an array of at least 7 fields")
    return backfilled_tick(gap, kline[4], kline[6], fetched_ms, quote=QUOTE)


class BinanceHistory:
    """Klines of a gap's market; one client and one weight budget for every gap of a run."""

    def __init__(self, settings: Settings, *, budget: WeightBudget | None = None) -> None:
        self.settings = settings
        self.budget = budget or WeightBudget()
        self.http = ResilientHttp("binance", settings.binance_base_url)

    def fetch(self, gap: Gap) -> History:
        name = market(gap.symbol)
        for interval, step_ms in INTERVALS:
            klines = self._klines(name, interval, step_ms, gap)
            if klines:
                break
        fetched = now_ms()
        ticks, skipped = valid_ticks(
            klines, lambda kline: kline_tick(kline, gap, fetched), f"binance klines of {name}"
        )
        ticks = inside(gap, ticks)
        history = f"Binance's {interval} klines of {name}"
        reason = too_coarse(history, step_ms, widest_spacing_ms(self.settings, gap.source))
        if not ticks:
            reason = f"Binance has no klines of {name} ({duration(step_ms)} or finer) in the span"
        return History(ticks, step_ms, reason, skipped)

    def _klines(self, name: str, interval: str, step_ms: int, gap: Gap) -> list[Any]:
        """The klines whose close time is in the gap, page after page."""
        start = gap.start_ms - step_ms + 1  # the first open time whose close is in the gap
        last_open = gap.end_ms - step_ms  # the last one whose close is before the gap's end
        klines: list[Any] = []
        while start <= last_open:
            self.budget.spend(KLINE_WEIGHT)
            params = {
                "symbol": name,
                "interval": interval,
                "startTime": start,
                "endTime": last_open,
                "limit": KLINE_LIMIT,
            }
            page, headers = self.http.get_json_and_headers(KLINES, params)
            self.budget.observe(headers)
            if not isinstance(page, list):
                raise SourceUnavailable("binance: klines answer is not a list")
            klines.extend(page)
            last = page[-1] if len(page) == KLINE_LIMIT else None
            last_open_ms = last[0] if isinstance(last, list) and last else None
            if not isinstance(last_open_ms, int):  # the last page, or one we cannot page on
                break
            start = last_open_ms + step_ms
        return klines

    def close(self) -> None:
        self.http.close()
