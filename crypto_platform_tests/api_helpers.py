"""Known rows in Cassandra, a real uvicorn server of the API on a free port, its SSE read."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from crypto_platform.api.server import build_server
from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import (
    AGGREGATE_COLUMNS,
    TICK_VALUES,
    CassandraTarget,
    day_of,
    insert_cql,
    session_for,
    write_rows,
)
from crypto_platform.stack.ephemeral import free_ports

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)


def tick_row(symbol: str, price: float, at: dt.datetime, **extra: object) -> dict[str, object]:
    """A tick shaped like a row of the Spark job's batches, optional fields null."""
    ms = int(at.replace(tzinfo=dt.UTC).timestamp() * 1000)
    fields: dict[str, object] = dict.fromkeys(TICK_VALUES)
    fields |= {"symbol": symbol, "source": "simulated", "price": price, "quote": "USD"}
    fields |= {"event_time_ms": ms, "ingest_time_ms": ms + 40, "day": day_of(ms)}
    return fields | extra


def write_ticks(settings: Settings, rows: list[dict[str, object]]) -> None:
    """Through the Spark job's own writer: prices_by_symbol and latest_prices."""
    columns = {name: [row[name] for row in rows] for name in TICK_VALUES}
    write_rows(CassandraTarget.from_settings(settings), ticks=columns)


def write_window(
    settings: Settings,
    symbol: str,
    start: dt.datetime,
    means: tuple[float, float, float],
    *,
    seconds: int = 300,
    latest: bool = True,
    source: str = "binance",
) -> None:
    """One moving window of a source into aggregates_by_symbol (and latest_aggregates)."""
    target = CassandraTarget.from_settings(settings)
    session = session_for(target)
    end = start + dt.timedelta(seconds=seconds)
    values = (*means, 12, min(means), max(means), means[0], means[1], end)
    key = ("symbol", "source", "window_seconds", "window_start", "window_end")
    session.execute(
        session.prepare(
            insert_cql(target.keyspace, "aggregates_by_symbol", (*key, "day", *AGGREGATE_COLUMNS))
        ),
        (symbol, source, seconds, start, end, start.strftime("%Y-%m-%d"), *values),
    )
    if latest:
        session.execute(
            session.prepare(
                insert_cql(target.keyspace, "latest_aggregates", (*key, *AGGREGATE_COLUMNS))
            ),
            (symbol, source, seconds, start, end, *values),
        )


@contextmanager
def running_api(settings: Settings) -> Iterator[str]:
    """A real uvicorn server of the app in a thread; yields its base URL."""
    port = free_ports(1)[0]
    server = build_server(settings, "127.0.0.1", port, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.handle_exit(0, None)
        thread.join(timeout=15)


def get(base: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(base + path, params=params, timeout=10)  # type: ignore[arg-type]


@dataclass
class Event:
    """One Server-Sent Event as a client sees it (a comment, such as `subscribed`, too)."""

    event: str | None = None
    id: str | None = None
    data: Any = None
    comment: str | None = None


def sse_events(response: httpx.Response) -> Iterator[Event]:
    """The events of a `text/event-stream` answer, as they arrive (data parsed as JSON)."""
    current = Event()
    for line in response.iter_lines():
        if not line:
            if current != Event():
                yield current
            current = Event()
        elif line.startswith(":"):
            current.comment = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                current.data = json.loads(value)
            elif name in ("event", "id"):
                setattr(current, name, value)


@contextmanager
def listening(base: str, name: str, until: Callable[[Any], bool]) -> Iterator[list[Any]]:
    """The `name` events of `/stream`, collected by a subscriber until `until` holds for one.

    Yields their list once the subscriber is in and the poller has taken its first look (so
    what is written next is new); on leaving, waits for the last one (20 s at most).
    """
    received: list[Any] = []
    subscribed = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", base + "/stream", timeout=30) as response:
            for event in sse_events(response):
                if event.comment == "subscribed":
                    subscribed.set()
                elif event.event == name:
                    received.append(event.data)
                    if until(event.data):
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert subscribed.wait(10)
    time.sleep(1)
    yield received
    listener.join(timeout=20)


def events_until(events: Iterator[Event], last: Callable[[Event], bool]) -> list[Event]:
    """The events up to and including the first one `last` accepts."""
    taken = []
    for event in events:
        taken.append(event)
        if last(event):
            return taken
    raise AssertionError(f"the stream ended before the awaited event; got {taken}")
