"""The faked internet: local HTTP and WebSocket servers with payloads shaped like the real APIs."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from websockets.sync.server import ServerConnection, serve


@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: bytes | str | Any = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float


Answer = Callable[[Request], Reply]


class FakeApi:
    """An HTTP server answering from a per-path script; the last reply repeats.

    A path can also be answered by a function of the request (`answer`): then its scripted
    replies (a 429, say) are each used once, first, and the function answers the rest.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._scripts: dict[str, deque[Reply]] = {}
        self._answers: dict[str, Answer] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = Request(
                    parts.path, parse_qs(parts.query), dict(self.headers), time.monotonic()
                )
                api.requests.append(request)
                reply = api._next(request)
                time.sleep(reply.delay)
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script(self, path: str, *replies: Reply) -> None:
        self._scripts[path] = deque(replies)

    def answer(self, path: str, respond: Answer) -> None:
        self._answers[path] = respond

    def _next(self, request: Request) -> Reply:
        script = self._scripts.get(request.path)
        respond = self._answers.get(request.path)
        if respond is not None:
            return script.popleft() if script else respond(request)
        if not script:
            return Reply(404, {"msg": "not found"})
        return script.popleft() if len(script) > 1 else script[0]

    def hits(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def binance_ticker(symbol: str, price: str, close_time: int = 1_763_700_000_000) -> dict:
    """One element of GET /api/v3/ticker/24hr, as Binance sends it."""
    return {
        "symbol": symbol,
        "priceChange": "-94.99999800",
        "priceChangePercent": "-0.950",
        "weightedAvgPrice": "0.29628482",
        "prevClosePrice": "0.10002000",
        "lastPrice": price,
        "lastQty": "200.00000000",
        "bidPrice": "4.00000000",
        "bidQty": "100.00000000",
        "askPrice": "4.00000200",
        "askQty": "100.00000000",
        "openPrice": "99.00000000",
        "highPrice": "100.00000000",
        "lowPrice": "0.10000000",
        "volume": "8913.30000000",
        "quoteVolume": "15.30000000",
        "openTime": close_time - 86_400_000,
        "closeTime": close_time,
        "firstId": 28385,
        "lastId": 28460,
        "count": 76,
    }


def coinranking_coin(symbol: str, price: str | None, **extra: Any) -> dict:
    """One element of GET /v2/coins data.coins, as Coinranking sends it (prices as strings)."""
    coin = {
        "uuid": f"uuid-{symbol}",
        "symbol": symbol,
        "name": {"BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana"}.get(symbol, symbol),
        "color": "#f7931A",
        "iconUrl": "https://cdn.coinranking.com/bOabBYkcX/bitcoin_btc.svg",
        "marketCap": "1282325872580",
        "price": price,
        "listedAt": 1330214400,
        "tier": 1,
        "change": "-0.52",
        "rank": 1,
        "sparkline": ["64600.1", None, "64800.7"],
        "lowVolume": False,
        "coinrankingUrl": "https://coinranking.com/coin/Qwsogvtv82FCd+bitcoin-btc",
        "24hVolume": "33221958102",
        "btcPrice": "1",
        "numberOfMarkets": 9712,
        "supply": {
            "confirmed": True,
            "max": "21000000",
            "total": "19790000",
            "circulating": "19790000",
        },
    }
    coin.update(extra)
    return coin


def coinranking_page(coins: list[dict]) -> dict:
    return {"status": "success", "data": {"stats": {"total": len(coins)}, "coins": coins}}


class FakeKlines:
    """GET /api/v3/klines as Binance answers it, from a price path `close(market, ms)`.

    Honours symbol, interval (those in `intervals`; others answer no klines), startTime,
    endTime and limit (at most 1000); only klines that have opened by now. Each answer
    carries X-MBX-USED-WEIGHT-1M: `used_weight(n)` for the n-th answer (default 2 per
    request, as if all fell in one minute).
    """

    STEPS: ClassVar[dict[str, int]] = {"1s": 1_000, "1m": 60_000, "5m": 300_000}

    def __init__(
        self,
        close: Callable[[str, int], float],
        *,
        intervals: tuple[str, ...] = ("1s", "1m"),
        used_weight: Callable[[int], int] = lambda n: 2 * n,
    ) -> None:
        self.close = close
        self.intervals = intervals
        self.used_weight = used_weight
        self.answered = 0

    def __call__(self, request: Request) -> Reply:
        query = {name: values[0] for name, values in request.query.items()}
        self.answered += 1
        headers = {"X-MBX-USED-WEIGHT-1M": str(self.used_weight(self.answered))}
        step = self.STEPS.get(query["interval"])
        if step is None or query["interval"] not in self.intervals:
            return Reply(body=[], headers=headers)
        now = int(time.time() * 1000)
        first = -(-int(query.get("startTime", now - 500 * step)) // step) * step
        last = min(int(query.get("endTime", now)), now)
        limit = min(int(query.get("limit", 500)), 1000)
        opens = range(first, last + 1, step)[:limit]
        return Reply(body=[self.kline(query["symbol"], at, step) for at in opens], headers=headers)

    def kline(self, market: str, open_ms: int, step: int) -> list:
        """A kline of one trade a second at the price path, its seconds aggregated as Binance's.

        A 1-s kline is that trade; a longer one opens at its first second and closes at its last.
        """
        close_ms = open_ms + step - 1
        trades = [self.close(market, at) for at in range(open_ms + 999, close_ms + 1, 1_000)]
        ohlc = (trades[0], max(trades), min(trades), trades[-1])
        prices = [f"{price:.8f}" for price in ohlc]
        return [open_ms, *prices, "1.5", close_ms, "9.0", 3, "0.7", "4.2", "0"]


class FakeCoinHistory:
    """GET /coin/{uuid}/history?timePeriod=... as Coinranking answers it.

    Points counted back from now over the period, `spacing_s[period]` apart (coarser for
    longer periods), newest first, prices as strings; `price(timestamp_s)` None is a null.
    """

    PERIODS_S: ClassVar[dict[str, int]] = {
        "1h": 3_600, "3h": 10_800, "12h": 43_200, "24h": 86_400, "7d": 604_800,
        "30d": 2_592_000, "3m": 7_776_000, "1y": 31_536_000, "3y": 94_608_000,
        "5y": 157_680_000,
    }  # fmt: skip

    def __init__(self, price: Callable[[int], float | None], spacing_s: dict[str, int]) -> None:
        self.price = price
        self.spacing_s = spacing_s

    def __call__(self, request: Request) -> Reply:
        period = request.query.get("timePeriod", ["24h"])[0]
        step = self.spacing_s[period]
        now = int(time.time())
        newest = now - now % step
        history = []
        for at in range(newest, now - self.PERIODS_S[period], -step):
            price = self.price(at)
            history.append({"price": None if price is None else str(price), "timestamp": at})
        return Reply(body={"status": "success", "data": {"change": "0.52", "history": history}})


class FakeBinanceStream:
    """A WebSocket server for `/stream?streams=...`: pushes what `feed` yields per connection."""

    def __init__(self, feed: Callable[[int], Iterator[str | None]]) -> None:
        """`feed(connection_number)` yields messages; None closes that connection."""
        self.connections = 0
        self.paths: list[str] = []
        self._feed = feed

        def handler(connection: ServerConnection) -> None:
            self.connections += 1
            self.paths.append(connection.request.path if connection.request else "")
            for message in self._feed(self.connections):
                if message is None:
                    connection.close()
                    return
                connection.send(message)
            connection.wait_closed()

        self.server = serve(handler, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def mini_ticker(market: str, price: str, event_ms: int) -> str:
    """One combined-stream miniTicker message, as Binance pushes it."""
    return json.dumps(
        {
            "stream": f"{market.lower()}@miniTicker",
            "data": {
                "e": "24hrMiniTicker",
                "E": event_ms,
                "s": market,
                "c": price,
                "o": "0.0010",
                "h": "0.0025",
                "l": "0.0010",
                "v": "10000",
                "q": "18",
            },
        }
    )


@contextmanager
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    try:
        yield api
    finally:
        api.close()
