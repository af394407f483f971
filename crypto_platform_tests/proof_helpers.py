"""For the end-to-end proof of completeness: a fake Binance with a clock, and the stores read back.

The fake exchange serves its 24h ticker and 1-second klines from one price path. Its clock
can run behind the machine's and catch up at once (`Exchange.behind_ms`): that is how a
producer outage of 3 minutes of exchange time passes in seconds of the suite's time.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from crypto_platform.completeness.history.binance import KLINES
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra, cassandra_queries, mongo
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.fake_internet import (
    FakeApi,
    FakeKlines,
    Reply,
    Request,
    binance_ticker,
    fake_api,
)

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
TICKER = "/api/v3/ticker/24hr"
SYMBOLS = ("BTC", "ETH")
CADENCE_MS = 2_000  # the producer's poll interval, and binance's gap cadence


def price(market: str, ms: int) -> float:
    """The one price path the ticker and the klines both serve: smooth, never repeating."""
    base = 64_000.0 if market == "BTCUSDT" else 3_200.0
    return round(base * (1 + 0.01 * math.sin(ms / 97_000) + 0.002 * math.sin(ms / 7_100)), 8)


@dataclass
class Exchange:
    """The fake Binance and its clock: `behind_ms` behind the machine's."""

    api: FakeApi
    behind_ms: int = 0

    def now(self) -> int:
        return now_ms() - self.behind_ms

    def ticker(self, _request: Request) -> Reply:
        """The 24h ticker of the followed markets, priced at the exchange's now."""
        now = self.now()
        markets = [f"{symbol}USDT" for symbol in SYMBOLS]
        return Reply(body=[binance_ticker(m, f"{price(m, now):.8f}", now) for m in markets])


@contextmanager
def fake_exchange(behind_ms: int) -> Iterator[Exchange]:
    """Binance's ticker and klines; the klines answer one 429 with Retry-After first."""
    with fake_api() as api:
        exchange = Exchange(api, behind_ms)
        api.answer(TICKER, exchange.ticker)
        too_much = Reply(429, {"code": -1003, "msg": "Too much weight"}, {"Retry-After": "1"})
        api.script(KLINES, too_much)
        api.answer(KLINES, FakeKlines(price))
        yield exchange


def binance_tick(symbol: str, event_time_ms: int, ingest_time_ms: int) -> Tick:
    market = f"{symbol}USDT"
    return Tick.build(source="binance", symbol=symbol, price=price(market, event_time_ms),
                      quote="USDT", event_time_ms=event_time_ms,
                      ingest_time_ms=ingest_time_ms)  # fmt: skip


def history(since_ms: int, until_ms: int) -> list[Tick]:
    """What the producer sent before the test's part began: a tick every 2 s per coin."""
    start = since_ms - since_ms % CADENCE_MS
    return [binance_tick(s, t, t) for t in range(start, until_ms, CADENCE_MS) for s in SYMBOLS]


def late(at_ms: int, count: int) -> list[Tick]:
    """Ticks from `at_ms` on odd milliseconds (never an identity of the history's)."""
    times = range(at_ms + 777, at_ms + 777 + count * 3_000, 3_000)
    return [binance_tick(symbol, t, now_ms()) for t in times for symbol in SYMBOLS]


def mongo_ticks(settings: Settings) -> pd.DataFrame:
    """Every tick MongoDB holds: source, symbol, event time, price."""
    columns = ["source", "symbol", "event_time_ms", "price"]
    with mongo.connect(settings) as client:
        docs = mongo.prices_collection(client, settings).find(
            {}, {"_id": 0, **dict.fromkeys(columns, 1)}
        )
        return pd.DataFrame(list(docs), columns=columns)


def per_hour(ticks: pd.DataFrame) -> Counter[tuple[str, int]]:
    """Ticks per (coin, hour start)."""
    pairs = zip(ticks["symbol"], ticks["event_time_ms"], strict=True)
    return Counter((symbol, int(ms) - int(ms) % HOUR_MS) for symbol, ms in pairs)


def cassandra_per_hour(settings: Settings, days: list[str]) -> Counter[tuple[str, int]]:
    """prices_by_symbol's ticks per (coin, hour start), over `days`."""
    cluster, session = cassandra.connect(settings)
    try:
        return Counter(
            (symbol, ms - ms % HOUR_MS)
            for symbol in SYMBOLS
            for day in days
            for _, ms in cassandra_queries.price_keys(
                session, settings.cassandra_keyspace, symbol, day
            )
        )
    finally:
        cluster.shutdown()


def day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def iso(ms: int) -> str:
    """UTC to the second, as the command line takes it (the API reads it as UTC too)."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
