"""Coinranking v2: `/coins` for the wanted symbols, with the `x-access-token` header.

Prices are strings and some are null; `/coins` carries no pricing time, so a tick's event
time is when we fetched it.
"""

from __future__ import annotations

import logging

from crypto_platform.sources.base import PollingSource
from crypto_platform.sources.http import ResilientHttp
from crypto_platform.ticks import Tick, now_ms

log = logging.getLogger(__name__)


class CoinrankingSource(PollingSource):
    """Polls `/coins?symbols[]=...`; the first (highest-ranked) coin of a symbol wins."""

    name = "coinranking"

    def __init__(
        self,
        symbols: list[str],
        base_url: str,
        interval: float,
        api_key: str | None = None,
        **http: object,
    ) -> None:
        super().__init__(symbols, interval)
        headers = {"x-access-token": api_key} if api_key else {}
        self.http = ResilientHttp("coinranking", base_url, headers=headers, **http)  # type: ignore[arg-type]
        self._missing_warned: set[str] = set()

    def poll(self) -> list[Tick]:
        params = [("symbols[]", symbol) for symbol in self.symbols] + [("limit", "100")]
        payload = self.http.get_json("/coins", params)
        coins = payload.get("data", {}).get("coins") if isinstance(payload, dict) else None
        if not isinstance(coins, list):
            self.stats.skip(self.name, "payload has no data.coins list")
            return []
        fetched = now_ms()
        wanted = set(self.symbols)
        ticks: dict[str, Tick] = {}
        for coin in coins:
            if not isinstance(coin, dict):
                self.stats.skip(self.name, "coin is not an object")
                continue
            symbol = str(coin.get("symbol", "")).upper()
            if symbol not in wanted:
                self.stats.skip(self.name, f"unknown symbol {coin.get('symbol')!r}")
                continue
            if symbol in ticks:
                continue
            supply = coin.get("supply")
            tick = self._valid(
                source=self.name,
                symbol=symbol,
                price=coin.get("price"),
                quote="USD",
                event_time_ms=fetched,
                ingest_time_ms=fetched,
                name=coin.get("name"),
                uuid=coin.get("uuid"),
                market_cap=coin.get("marketCap"),
                volume_24h=coin.get("24hVolume"),
                change_24h_pct=coin.get("change"),
                number_of_markets=coin.get("numberOfMarkets"),
                total_supply=supply.get("total") if isinstance(supply, dict) else None,
            )
            if tick is not None:
                ticks[symbol] = tick
        for symbol in wanted - set(ticks) - self._missing_warned:
            self._missing_warned.add(symbol)
            log.warning("coinranking: no usable coin for symbol %s (check CRYPTO_SYMBOLS)", symbol)
        return list(ticks.values())

    def close(self) -> None:
        self.http.close()
