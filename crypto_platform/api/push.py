"""Live push: one poller per app watches Cassandra and fans new data out to every subscriber.

Cassandra has no change feed the API can follow, so the poller reads the two `latest_*`
tables (one small query each) every `POLL_S`; for each coin whose newest tick moved, it
reads that coin's new ticks from `prices_by_symbol`, so each new price is sent, not only
the last, and the newest candles of the tick's source in the current partition of the
shortest interval built (CRYPTO_CANDLE_INTERVALS: 1m by default), then and on the next
poll, since Spark writes a batch's candles beside its ticks, not after them. It polls while
someone listens and `RESUME_WINDOW_S` after the last one left, so a client that reconnects
within that time resumes from its `Last-Event-ID` without a hole (event_log.py); after that
nothing is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.sse import ServerSentEvent

from crypto_platform.api.errors import BackendUnavailable, TooManyStreams
from crypto_platform.api.event_log import EventLog
from crypto_platform.api.models import Aggregate, Candle, LatestPrice, PricePoint, utc
from crypto_platform.api.observation import Observer
from crypto_platform.api.pipeline import PipelineMeter
from crypto_platform.api.reader import CassandraReader
from crypto_platform.candles import INTERVALS, period_of

log = logging.getLogger(__name__)

POLL_S = 0.2
PIPELINE_EVERY_S = 5.0
MAX_NEW_TICKS = 500  # per coin and poll: a burst beyond this shows as its newest ticks
# Per coin and poll, the newest candles read: the current one and the one it may just have closed.
CANDLES_READ = 2
QUEUE_SIZE = 2000  # per subscriber, and the events kept for a reconnect
RESUME_WINDOW_S = 30.0
ONE_MS = dt.timedelta(milliseconds=1)

Queue = asyncio.Queue[ServerSentEvent | None]


class Broadcaster:
    """Polls while someone listens; each of at most `max_subscribers` has its own queue."""

    def __init__(
        self,
        reader: CassandraReader,
        observer: Observer,
        meter: PipelineMeter,
        *,
        max_subscribers: int,
    ) -> None:
        self.reader = reader
        self.observer = observer
        self.meter = meter
        self.max_subscribers = max_subscribers
        self._log = EventLog(QUEUE_SIZE)
        self._queues: set[Queue] = set()
        self._task: asyncio.Task[None] | None = None
        intervals = reader.settings.candle_intervals
        self._interval: str | None = min(intervals, key=INTERVALS.__getitem__, default=None)
        self._idle_until = 0.0
        self._closed = False

    @contextlib.asynccontextmanager
    async def subscribe(self, last_event_id: str | None = None) -> AsyncIterator[Queue]:
        """A queue of the events from now on, after those since `last_event_id` if given.

        Raises `TooManyStreams` when `max_subscribers` queues are open.
        """
        if len(self._queues) >= self.max_subscribers:
            raise TooManyStreams(self.max_subscribers)
        queue: Queue = asyncio.Queue(QUEUE_SIZE)
        polling = self._task is not None and not self._task.done()
        if not polling:
            self._log.break_off()
        if self._closed:
            queue.put_nowait(None)
        elif last_event_id is not None:
            for event in self._log.since(last_event_id):
                queue.put_nowait(event)
        self._queues.add(queue)
        if not polling:
            self._task = asyncio.create_task(self._run())
        try:
            yield queue
        finally:
            self._queues.discard(queue)
            if not self._queues:
                self._idle_until = asyncio.get_running_loop().time() + RESUME_WINDOW_S

    def close(self) -> None:
        """End every stream (the server is stopping): each subscriber gets the end marker."""
        self._closed = True
        for queue in list(self._queues):
            _offer(queue, None)

    async def stop(self) -> None:
        self.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _publish(self, event: ServerSentEvent) -> None:
        stamped = self._log.stamp(event)
        for queue in list(self._queues):
            _offer(queue, stamped)

    async def _run(self) -> None:
        prices: dict[str, Any] = {}
        aggregates: dict[str, Any] = {}
        candles: dict[tuple[str, str], list[Any]] = {}
        settling: dict[tuple[str, str], Any] = {}  # (coin, source) that moved the poll before
        first = True
        loop = asyncio.get_running_loop()
        next_pipeline = loop.time()
        while not self._closed and (self._queues or loop.time() < self._idle_until):
            try:
                moved = await self._poll_prices(prices, announce=not first)
                await self._poll_aggregates(aggregates, announce=not first)
                await self._poll_candles({**settling, **moved}, candles, announce=not first)
                settling = moved
                first = False
                if loop.time() >= next_pipeline:
                    next_pipeline = loop.time() + PIPELINE_EVERY_S
                    state = self.meter.state(await self.observer.observe())
                    self._publish(
                        ServerSentEvent(event="pipeline", data=state.model_dump(mode="json"))
                    )
            except BackendUnavailable as error:
                log.debug("push: %s", error)
            except Exception:
                # A row the poller cannot handle must not end every client's stream.
                log.exception("push: a poll failed; polling on")
            await asyncio.sleep(POLL_S)

    async def _poll_prices(
        self, known: dict[str, Any], *, announce: bool
    ) -> dict[tuple[str, str], Any]:
        """Sends the new ticks; returns the newest tick of each coin and source that moved."""
        moved: dict[tuple[str, str], Any] = {}
        for row in await self.reader.latest_prices():
            before = known.get(row.symbol)
            if before is not None and (before.event_time, before.price) == (
                row.event_time,
                row.price,
            ):
                continue
            if announce:
                new: list[Any] = []
                if before is not None and row.event_time > before.event_time:
                    new = await self.reader.prices(
                        row.symbol, before.event_time + ONE_MS, row.event_time, MAX_NEW_TICKS
                    )
                for tick in new or [row]:
                    self._publish(_event("price", PricePoint.from_row(tick)))
                    moved[(tick.symbol, tick.source)] = tick  # the ticks come oldest first
                self._publish(_event("latestPrice", LatestPrice.from_row(row)))
            # Only once published: a failed read above retries the same ticks next poll.
            known[row.symbol] = row
            moved[(row.symbol, row.source)] = row
        return moved

    async def _poll_aggregates(self, known: dict[str, Any], *, announce: bool) -> None:
        for row in await self.reader.latest_aggregates():
            before = known.get(row.symbol)
            if before is not None and before == row:
                continue
            known[row.symbol] = row
            if announce:
                self._publish(_event("aggregate", Aggregate.from_row(row)))

    async def _poll_candles(
        self, ticks: dict[tuple[str, str], Any], known: dict[tuple[str, str], list[Any]],
        *, announce: bool,
    ) -> None:  # fmt: skip
        """Sends the newest candles of each tick's coin and source that changed since read.

        The coins' reads are in flight together: a poll waits for one round trip, not one per
        coin. A tick in a partition's first candle also reads the partition before, whose
        last candle it may just have closed.
        """
        interval = self._interval
        if interval is None:
            return
        reads = [self._newest_candles(tick, interval) for tick in ticks.values()]
        for tick, rows in zip(ticks.values(), await asyncio.gather(*reads), strict=True):
            before = known.get((tick.symbol, tick.source), [])
            known[(tick.symbol, tick.source)] = rows
            if announce:
                for row in reversed(rows):
                    if row not in before:
                        self._publish(_event("candle", Candle.from_row(row)))

    async def _newest_candles(self, tick: Any, interval: str) -> list[Any]:
        """The tick's coin and source's newest candles, of its partition and the one before."""
        moment = int(utc(tick.event_time).timestamp() * 1000)
        periods = dict.fromkeys(
            period_of(interval, at) for at in (moment, moment - INTERVALS[interval])
        )
        rows: list[Any] = []
        for period in periods:
            rows += await self.reader.newest_candles(
                tick.symbol, tick.source, interval, period, CANDLES_READ
            )
        return rows[:CANDLES_READ]


def _event(name: str, model: Any) -> ServerSentEvent:
    return ServerSentEvent(event=name, data=model.model_dump(mode="json"))


def _offer(queue: Queue, event: ServerSentEvent | None) -> None:
    """Never block the poller on a slow client: drop its oldest event instead."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(event)
