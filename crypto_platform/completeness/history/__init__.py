"""Each source's own history, to fill its gaps: one module per source.

`binance` and `binance-ws` gaps are filled from Binance's klines (one client, one weight
budget: Binance counts weight per IP), `coinranking` from its coin history, `simulated` by
regenerating the walk. `replay` has no history: its gaps are not backfilled.
"""

from __future__ import annotations

from collections.abc import Callable

from pymongo.collection import Collection

from crypto_platform.completeness.gaps import Gap
from crypto_platform.completeness.history.binance import BinanceHistory
from crypto_platform.completeness.history.coinranking import CoinrankingHistory
from crypto_platform.completeness.history.model import History, HistorySource
from crypto_platform.completeness.history.simulated import SimulatedHistory
from crypto_platform.completeness.history.weight import WeightBudget
from crypto_platform.settings import Settings

__all__ = ["HISTORY_OF", "Histories", "History", "WeightBudget"]

# The history a source's gaps are filled from.
HISTORY_OF = {
    "binance": "binance",
    "binance-ws": "binance",
    "coinranking": "coinranking",
    "simulated": "simulated",
}


class Histories:
    """The histories a backfill needs, opened on first use and closed together."""

    def __init__(
        self, settings: Settings, prices: Collection, *, weight_budget: WeightBudget | None = None
    ) -> None:
        self._makers: dict[str, Callable[[], HistorySource]] = {
            "binance": lambda: BinanceHistory(settings, budget=weight_budget),
            "coinranking": lambda: CoinrankingHistory(settings, prices),
            "simulated": lambda: SimulatedHistory(settings, prices),
        }
        self._open: dict[str, HistorySource] = {}

    def fetch(self, gap: Gap) -> History:
        """What the source of `gap` has for it (`KeyError` for a source without history)."""
        name = HISTORY_OF[gap.source]
        if name not in self._open:
            self._open[name] = self._makers[name]()
        return self._open[name].fetch(gap)

    def close(self) -> None:
        for history in self._open.values():
            history.close()
        self._open.clear()
