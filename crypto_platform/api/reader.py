"""Cassandra reads of the API: one session per app, prepared statements, awaited without threads.

The session is opened when the app starts; if Cassandra is down then (or goes down later),
each request fails fast with `BackendUnavailable` and a later one reconnects.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from cassandra import DriverException, RequestExecutionException
from cassandra.cluster import Cluster, NoHostAvailable, ResponseFuture, Session
from cassandra.query import PreparedStatement

from crypto_platform.api.errors import BackendUnavailable
from crypto_platform.api.reasons import reason
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra
from crypto_platform.ticks import SOURCES

log = logging.getLogger(__name__)

PRICE = "symbol, source, price, quote, event_time"
LATEST = (
    f"{PRICE}, name, market_cap, volume_24h, change_24h_pct, number_of_markets, total_supply, uuid"
)
AGGREGATE = (
    "symbol, source, window_seconds, window_start, window_end, arithmetic_mean, geometric_mean, "
    "harmonic_mean, tick_count, updated_at"
)
CANDLE = "symbol, source, interval, start, open, high, low, close, tick_count"
QUERIES = {
    "ready": "SELECT symbol FROM {ks}.latest_prices LIMIT 1",
    "latest_prices": f"SELECT {LATEST} FROM {{ks}}.latest_prices",
    "latest_price": f"SELECT {LATEST} FROM {{ks}}.latest_prices WHERE symbol = ?",
    "latest_aggregates": f"SELECT {AGGREGATE} FROM {{ks}}.latest_aggregates",
    "latest_aggregate": f"SELECT {AGGREGATE} FROM {{ks}}.latest_aggregates WHERE symbol = ?",
    "prices": f"SELECT {PRICE} FROM {{ks}}.prices_by_symbol WHERE symbol = ? AND day = ? "
    "AND event_time >= ? AND event_time <= ? LIMIT ?",
    "aggregates": f"SELECT {AGGREGATE} FROM {{ks}}.aggregates_by_symbol WHERE symbol = ? "
    "AND source = ? AND window_seconds = ? AND day = ? AND window_start >= ? LIMIT ?",
    "aggregates_at": f"SELECT {AGGREGATE} FROM {{ks}}.aggregates_by_symbol WHERE symbol = ? "
    "AND source = ? AND window_seconds = ? AND day = ? AND window_start IN ? LIMIT ?",
    "candles": f"SELECT {CANDLE} FROM {{ks}}.candles WHERE symbol = ? AND source = ? "
    "AND interval = ? AND period = ? AND start >= ? AND start < ? LIMIT ?",
    "newest_candles": f"SELECT {CANDLE} FROM {{ks}}.candles WHERE symbol = ? AND source = ? "
    "AND interval = ? AND period = ? LIMIT ?",
}
FAILURES = (NoHostAvailable, DriverException, RequestExecutionException, OSError)
RECONNECT_EVERY_S = 2.0
DAY_S = 86_400
TIMEOUT_S = 5.0


class CassandraReader:
    """The app's Cassandra session and its prepared statements."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        self._lock = asyncio.Lock()
        self._last_attempt = 0.0
        self._last_error = "not connected yet"

    async def start(self) -> None:
        """Connect now if Cassandra answers; otherwise the first request will try again."""
        try:
            await self._ready()
        except BackendUnavailable as error:
            cause = error.__cause__ or "no driver error"
            log.warning("%s (%s); the API answers 503 until it is back", error, cause)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None

    async def _ready(self) -> Session:
        if self._session is not None:
            return self._session
        async with self._lock:
            if self._session is None:
                if time.monotonic() - self._last_attempt < RECONNECT_EVERY_S:
                    raise BackendUnavailable("cassandra", self._last_error)
                self._last_attempt = time.monotonic()
                try:
                    await asyncio.to_thread(self._connect)
                except FAILURES as error:
                    self._last_error = reason(error, timeout_s=TIMEOUT_S)
                    raise BackendUnavailable("cassandra", self._last_error) from error
        assert self._session is not None
        return self._session

    def _connect(self) -> None:
        cluster, session = cassandra.connect(self.settings, connect_timeout=TIMEOUT_S)
        try:
            keyspace = self.settings.cassandra_keyspace
            self._prepared = {
                name: session.prepare(cql.format(ks=keyspace)) for name, cql in QUERIES.items()
            }
        except BaseException:
            cluster.shutdown()
            raise
        self._cluster, self._session = cluster, session

    async def rows(self, query: str, *params: Any) -> list[Any]:
        """Every row of a prepared query, all pages; Cassandra failing is `BackendUnavailable`."""
        session = await self._ready()
        try:
            return await _all_pages(
                session.execute_async(self._prepared[query], params, timeout=TIMEOUT_S)
            )
        except FAILURES as error:
            raise BackendUnavailable("cassandra", reason(error, timeout_s=TIMEOUT_S)) from error

    async def ready(self) -> None:
        """Raises `BackendUnavailable` unless Cassandra answers a read of the API's tables."""
        await self.rows("ready")

    async def latest_prices(self) -> list[Any]:
        return sorted(await self.rows("latest_prices"), key=lambda row: row.symbol)

    async def latest_price(self, symbol: str) -> Any | None:
        rows = await self.rows("latest_price", symbol)
        return rows[0] if rows else None

    async def latest_aggregates(self, source: str | None = None) -> list[Any]:
        """Per coin, the window `chosen` of its sources' (or `source`'s) current ones."""
        by_symbol: dict[str, list[Any]] = {}
        for row in await self.rows("latest_aggregates"):
            by_symbol.setdefault(row.symbol, []).append(row)
        found = (self._chosen(rows, source) for _, rows in sorted(by_symbol.items()))
        return [row for row in found if row is not None]

    async def latest_aggregate(self, symbol: str, source: str | None = None) -> Any | None:
        return self._chosen(await self.rows("latest_aggregate", symbol), source)

    def _chosen(self, rows: list[Any], source: str | None) -> Any | None:
        if source is not None:
            rows = [row for row in rows if row.source == source]
        settings = self.settings
        return chosen(rows, settings.aggregate_source_priority, settings.aggregate_window_s)

    async def prices(
        self, symbol: str, since: dt.datetime, until: dt.datetime, limit: int
    ) -> list[Any]:
        """The newest `limit` ticks in [since, until], oldest first (one query per day)."""
        found: list[Any] = []
        for day in _days_back(until, since):
            if len(found) >= limit:
                break
            found += await self.rows("prices", symbol, day, since, until, limit - len(found))
        return found[::-1]

    async def aggregates(
        self,
        symbol: str,
        source: str,
        since: dt.datetime,
        until: dt.datetime,
        limit: int,
        every_s: int | None = None,
    ) -> list[Any]:
        """A source's newest `limit` windows starting at or after `since`, oldest first.

        With `every_s`, only those starting at its multiples (rounded up to a multiple of
        the slide, where windows start): a long span thinned to as many points as a chart
        shows, each read by its key rather than the whole day scanned.
        """
        s = self.settings
        step = math.ceil(every_s / s.aggregate_slide_s) * s.aggregate_slide_s if every_s else 0
        found: list[Any] = []
        for day in _days_back(until, since):
            if len(found) >= limit:
                break
            left = limit - len(found)
            if step <= s.aggregate_slide_s:
                found += await self.rows(
                    "aggregates", symbol, source, s.aggregate_window_s, day, since, left
                )
            elif starts := step_starts(day, since, until, step)[:left]:
                found += await self.rows(
                    "aggregates_at", symbol, source, s.aggregate_window_s, day, starts, left
                )
        return found[::-1]

    async def candles(
        self,
        symbol: str,
        interval: str,
        periods: Sequence[str],
        since: dt.datetime,
        until: dt.datetime,
        limit: int,
        source: str | None = None,
    ) -> list[Any]:
        """The newest `limit` candles starting in [since, until), oldest first, one source's.

        `periods` are the range's partitions, newest first (`candles.periods_between`); only
        they are read. The source is `source`, else the one `/latestAggregate` serves now
        (`chosen`: a source that stopped is not served over a live one), else the first in
        `source_order` with candles in the range: each is read until one has some.
        """
        if source is None:
            current = await self.latest_aggregate(symbol)
            order = source_order(self.settings.aggregate_source_priority)
            if current is not None:
                order = [current.source, *(other for other in order if other != current.source)]
        for candidate in [source] if source else order:
            found: list[Any] = []
            for period in periods:
                if len(found) >= limit:
                    break
                found += await self.rows(
                    "candles", symbol, candidate, interval, period, since, until, limit - len(found)
                )
            if found:
                return found[::-1]
        return []

    async def newest_candles(
        self, symbol: str, source: str, interval: str, period: str, count: int
    ) -> list[Any]:
        """A coin and source's newest `count` candles of one partition, newest first."""
        return await self.rows("newest_candles", symbol, source, interval, period, count)


def chosen(rows: list[Any], priority: Sequence[str], window_s: int) -> Any | None:
    """Of a coin's latest windows (one per source and length), the one the API serves.

    The rule (CRYPTO_AGGREGATE_SOURCE_PRIORITY): the windows ending within `window_s` of
    the newest one are current; of those, the source listed first wins (an unlisted one
    after every listed), then the later end. So a source that stopped is not served over
    one that is live, and two live sources are never averaged together.
    """
    if not rows:
        return None
    newest = max(row.window_end for row in rows)
    current = [row for row in rows if row.window_end > newest - dt.timedelta(seconds=window_s)]
    rank = source_rank(priority)
    return min(
        current, key=lambda row: (rank.get(row.source, len(priority)), newest - row.window_end)
    )


def source_rank(priority: Sequence[str]) -> dict[str, int]:
    """Each source's place in CRYPTO_AGGREGATE_SOURCE_PRIORITY (an unlisted one after all)."""
    return {
        source: priority.index(source) if source in priority else len(priority)
        for source in SOURCES
    }


def source_order(priority: Sequence[str]) -> list[str]:
    """Every source as `source_rank` ranks them (the unlisted ones in `ticks.SOURCES`' order)."""
    rank = source_rank(priority)
    return sorted(SOURCES, key=rank.__getitem__)


def step_starts(day: str, since: dt.datetime, until: dt.datetime, step_s: int) -> list[dt.datetime]:
    """Multiples of `step_s` s in [since, until] on a UTC day (`YYYY-MM-DD`), newest first."""
    midnight = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()
    low = max(since.timestamp(), midnight)
    high = min(until.timestamp(), midnight + DAY_S - 1)
    starts = range(math.ceil(low / step_s) * step_s, math.floor(high) + 1, step_s)
    return [dt.datetime.fromtimestamp(t, dt.UTC) for t in reversed(starts)]


def _days_back(until: dt.datetime, since: dt.datetime) -> list[str]:
    """The `day` partition keys from `until`'s day back to `since`'s (both UTC)."""
    days, day = [], until.date()
    while day >= since.date():
        days.append(day.isoformat())
        day -= dt.timedelta(days=1)
    return days


def _all_pages(future: ResponseFuture) -> asyncio.Future[list[Any]]:
    """Await a driver future from asyncio: its callbacks run on the driver's event thread."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[list[Any]] = loop.create_future()
    rows: list[Any] = []

    def settle(setter: Any, value: Any) -> None:
        if not result.done():
            setter(value)

    def on_page(page: list[Any]) -> None:
        rows.extend(page)
        if future.has_more_pages:
            future.start_fetching_next_page()
        else:
            loop.call_soon_threadsafe(settle, result.set_result, rows)

    def on_error(error: BaseException) -> None:
        loop.call_soon_threadsafe(settle, result.set_exception, error)

    future.add_callbacks(on_page, on_error)
    return result
