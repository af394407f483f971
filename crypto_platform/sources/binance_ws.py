"""Binance WebSocket: combined miniTicker streams, pushed, with reconnects and ping/pong.

`wss://.../stream?streams=btcusdt@miniTicker/ethusdt@miniTicker` pushes
`{"stream": ..., "data": {"e": "24hrMiniTicker", "E": ms, "s": "BTCUSDT", "c": "..."}}`.
The websockets client answers pings and sends its own; a dropped connection is reopened
with exponential backoff and jitter, through a circuit breaker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import orjson
import pybreaker
from tenacity import Retrying, retry_if_exception_type
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from crypto_platform.resilience import RetryPolicy
from crypto_platform.sources.base import PriceSource
from crypto_platform.sources.binance import QUOTE, market
from crypto_platform.ticks import Tick, now_ms

log = logging.getLogger(__name__)

# Reconnects back off further than HTTP retries: a stream is expected to stay up.
RECONNECT_POLICY = RetryPolicy(backoff_max=30.0)
_CONNECT_ERRORS = (OSError, TimeoutError, WebSocketException, pybreaker.CircuitBreakerError)


class BinanceWebSocketSource(PriceSource):
    """Yields each pushed miniTicker as a one-tick batch; reconnects until stopped."""

    name = "binance-ws"

    def __init__(
        self,
        symbols: list[str],
        ws_url: str,
        *,
        open_timeout: float = 10.0,
        ping_interval: float = 20.0,
        policy: RetryPolicy = RECONNECT_POLICY,
    ) -> None:
        super().__init__(symbols)
        streams = "/".join(f"{market(symbol).lower()}@miniTicker" for symbol in symbols)
        self.url = f"{ws_url.rstrip('/')}/stream?streams={streams}"
        self._by_market = {market(symbol): symbol for symbol in symbols}
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._backoff = policy.backoff()
        self.breaker = policy.breaker(self.name)
        self.reconnects = 0

    def _connect(self) -> ClientConnection:
        return connect(
            self.url,
            open_timeout=self._open_timeout,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_interval,
            close_timeout=2,
        )

    def batches(self, stop: threading.Event) -> Iterator[list[Tick]]:
        while not stop.is_set():
            connection = self._open(stop)
            if connection is None:
                return
            log.info("binance-ws: connected to %s", self.url)
            with connection:
                try:
                    yield from self._receive(connection, stop)
                except (OSError, WebSocketException) as error:
                    self.reconnects += 1
                    log.warning("binance-ws: connection lost (%s); reconnecting", error)

    def _open(self, stop: threading.Event) -> ClientConnection | None:
        """Connect, retrying with backoff until it works; None once `stop` is set."""

        def sleep_unless_stopped(seconds: float) -> None:
            stop.wait(seconds)

        retrying = Retrying(
            retry=retry_if_exception_type(_CONNECT_ERRORS),
            wait=self._backoff,
            stop=lambda _: stop.is_set(),
            sleep=sleep_unless_stopped,
            before_sleep=lambda state: log.warning(
                "binance-ws: cannot connect (%s); retrying in %.1fs",
                state.outcome.exception() if state.outcome else "?",
                state.upcoming_sleep,
            ),
            reraise=True,
        )
        try:
            return retrying(self.breaker.call, self._connect)
        except _CONNECT_ERRORS:
            return None

    def _receive(self, connection: ClientConnection, stop: threading.Event) -> Iterator[list[Tick]]:
        while not stop.is_set():
            try:
                raw = connection.recv(timeout=0.5)
            except TimeoutError:
                continue
            tick = self._parse(raw)
            if tick is not None:
                yield [tick]

    def _parse(self, raw: str | bytes) -> Tick | None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.stats.skip(self.name, "message is not JSON")
            return None
        data = message.get("data") if isinstance(message, dict) else None
        if not isinstance(data, dict):
            self.stats.skip(self.name, "message has no data object")
            return None
        symbol = self._by_market.get(str(data.get("s")))
        if symbol is None:
            self.stats.skip(self.name, f"unknown symbol {data.get('s')!r}")
            return None
        return self._valid(
            source=self.name,
            symbol=symbol,
            price=data.get("c"),
            quote=QUOTE,
            event_time_ms=data.get("E"),
            ingest_time_ms=now_ms(),
            volume_24h=data.get("q"),
        )
