"""Binance REST: the 24h ticker of every symbol in one request (`/api/v3/ticker/24hr`)."""

from __future__ import annotations

import orjson

from crypto_platform.errors import ConfigurationError
from crypto_platform.sources.base import PollingSource
from crypto_platform.sources.http import RejectedRequest, ResilientHttp
from crypto_platform.ticks import Tick, now_ms

QUOTE = "USDT"


def market(symbol: str) -> str:
    """Binance's market for a base asset: BTC -> BTCUSDT."""
    return f"{symbol}{QUOTE}"


class BinanceRestSource(PollingSource):
    """Polls the batched 24h ticker; `closeTime` is when Binance priced it."""

    name = "binance"

    def __init__(self, symbols: list[str], base_url: str, interval: float, **http: object) -> None:
        super().__init__(symbols, interval)
        self.http = ResilientHttp("binance", base_url, **http)  # type: ignore[arg-type]
        self._by_market = {market(symbol): symbol for symbol in symbols}

    def poll(self) -> list[Tick]:
        params = {"symbols": orjson.dumps(list(self._by_market)).decode()}
        try:
            payload = self.http.get_json("/api/v3/ticker/24hr", params)
        except RejectedRequest as error:
            if "-1121" in str(error):  # Binance's "Invalid symbol."
                raise ConfigurationError(
                    f"Binance does not list one of {', '.join(self._by_market)}: "
                    "check CRYPTO_SYMBOLS (or --symbols)."
                ) from None
            raise
        if not isinstance(payload, list):
            self.stats.skip(self.name, "payload is not a list of tickers")
            return []
        fetched = now_ms()
        ticks = []
        for item in payload:
            if not isinstance(item, dict):
                self.stats.skip(self.name, "ticker is not an object")
                continue
            symbol = self._by_market.get(str(item.get("symbol")))
            if symbol is None:
                self.stats.skip(self.name, f"unknown symbol {item.get('symbol')!r}")
                continue
            tick = self._valid(
                source=self.name,
                symbol=symbol,
                price=item.get("lastPrice"),
                quote=QUOTE,
                event_time_ms=item.get("closeTime") or fetched,
                ingest_time_ms=fetched,
                volume_24h=item.get("quoteVolume"),
                change_24h_pct=item.get("priceChangePercent"),
            )
            if tick is not None:
                ticks.append(tick)
        return ticks

    def close(self) -> None:
        self.http.close()
