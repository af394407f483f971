"""The endpoints: latest values, history, live push, health, pipeline and metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import AfterValidator

from crypto_platform.api.alert_log import alert_log
from crypto_platform.api.errors import BACKENDS, BackendUnavailable
from crypto_platform.api.metrics import exposition
from crypto_platform.api.models import (
    Aggregate,
    Alert,
    BackendState,
    Candle,
    ErrorBody,
    GapSpan,
    Health,
    LatestPrice,
    Pipeline,
    PricePoint,
)
from crypto_platform.api.push import Queue
from crypto_platform.candles import CandleInterval, periods_between
from crypto_platform.ticks import SYMBOL_PATTERN, SourceTag

MAX_LIMIT = 5000
MAX_RANGE = dt.timedelta(days=31)
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorBody, "description": "No data for this symbol."}}
DOWN: Responses = {503: {"model": ErrorBody, "description": "Cassandra is unavailable."}}


def _symbol(value: str) -> str:
    """Case-insensitive, then the tick's own rule (ticks.SYMBOL_PATTERN)."""
    symbol = value.upper()
    if not value.isascii() or not re.fullmatch(SYMBOL_PATTERN, symbol):
        raise ValueError("a symbol is 1 to 20 letters or digits, e.g. BTC")
    return symbol


Symbol = Annotated[
    str,
    Path(
        description="Base asset, e.g. BTC (any case).",
        # The tick's rule, documented for either case (the validator applies it exactly).
        pattern=SYMBOL_PATTERN.replace("A-Z", "A-Za-z"),
        examples=["BTC"],
    ),
    AfterValidator(_symbol),
]
Limit = Annotated[int, Query(ge=1, description=f"At most this many items (capped at {MAX_LIMIT}).")]
Since = Annotated[
    dt.datetime | None,
    Query(description="ISO 8601 (UTC when it has no offset); default 1 h before the end."),
]
Until = Annotated[dt.datetime | None, Query(description="ISO 8601; default now.")]
Source = Annotated[
    SourceTag | None,
    Query(
        description="Whose windows or candles: one source's (neither mixes sources); default "
        "the one CRYPTO_AGGREGATE_SOURCE_PRIORITY picks (see the endpoint)."
    ),
]
Interval = Annotated[CandleInterval, Query(description="The candles' length.")]
Every = Annotated[
    int | None,
    Query(
        ge=1,
        le=int(MAX_RANGE.total_seconds()),
        description="Only the windows starting at multiples of this many seconds (rounded up "
        "to a multiple of the slide): a long span in fewer points. Default: every window.",
    ),
]

router = APIRouter()


def _state(request: Request) -> Any:
    return request.app.state


def _known(row: Any | None, symbol: str, source: str | None = None) -> Any:
    """The row, or a 404 saying the symbol (from that source) has no data."""
    if row is None:
        if source:
            raise HTTPException(404, f"no windows of {symbol} from {source} yet")
        raise HTTPException(404, f"unknown symbol {symbol}: no data for it yet")
    return row


def _invalid(name: str, message: str, value: Any) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, so clients handle every bad parameter the same way."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", name), "msg": message, "input": str(value)}]
    )


def _utc(name: str, moment: dt.datetime) -> dt.datetime:
    try:
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise _invalid(name, "out of range", moment) from None


def _window(
    since: dt.datetime | None, until: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    """The UTC range asked for: default the last hour up to now, at most MAX_RANGE long."""
    end = _utc("until", until) if until else dt.datetime.now(dt.UTC)
    try:
        start = _utc("since", since) if since else end - dt.timedelta(hours=1)
    except OverflowError:
        raise _invalid("until", "out of range", until) from None
    if start > end:
        raise _invalid("since", "since is after until", since)
    if end - start > MAX_RANGE:
        raise _invalid("since", f"a range is at most {MAX_RANGE.days} days long", since)
    return start, end


@router.get("/latestPrice", response_model=list[LatestPrice], responses=DOWN, tags=["prices"])
async def latest_prices(request: Request) -> list[LatestPrice]:
    """The newest tick of every coin."""
    return [LatestPrice.from_row(row) for row in await _state(request).reader.latest_prices()]


@router.get("/latestPrice/{symbol}", responses=NOT_FOUND | DOWN, tags=["prices"])
async def latest_price(request: Request, symbol: Symbol) -> LatestPrice:
    """The newest tick of one coin."""
    return LatestPrice.from_row(_known(await _state(request).reader.latest_price(symbol), symbol))


@router.get("/latestAggregate", responses=DOWN, tags=["aggregates"])
async def latest_aggregates(request: Request, source: Source = None) -> list[Aggregate]:
    """Every coin's current moving window: arithmetic, geometric and harmonic means."""
    rows = await _state(request).reader.latest_aggregates(source)
    return [Aggregate.from_row(row) for row in rows]


@router.get("/latestAggregate/{symbol}", responses=NOT_FOUND | DOWN, tags=["aggregates"])
async def latest_aggregate(request: Request, symbol: Symbol, source: Source = None) -> Aggregate:
    """One coin's current moving window, from the source the priority (or `source`) picks."""
    row = await _state(request).reader.latest_aggregate(symbol, source)
    return Aggregate.from_row(_known(row, symbol, source))


@router.get("/prices/{symbol}", responses=NOT_FOUND | DOWN, tags=["prices"])
async def prices(
    request: Request,
    symbol: Symbol,
    since: Since = None,
    until: Until = None,
    limit: Limit = 1000,
) -> list[PricePoint]:
    """A coin's ticks in [since, until], oldest first; the newest `limit` when there are more."""
    start, end = _window(since, until)
    reader = _state(request).reader
    _known(await reader.latest_price(symbol), symbol)
    rows = await reader.prices(symbol, start, end, min(limit, MAX_LIMIT))
    return [PricePoint.from_row(row) for row in rows]


@router.get("/aggregates/{symbol}", responses=NOT_FOUND | DOWN, tags=["aggregates"])
async def aggregates(
    request: Request,
    symbol: Symbol,
    since: Since = None,
    limit: Limit = 1000,
    source: Source = None,
    every: Every = None,
) -> list[Aggregate]:
    """A coin's moving windows (the configured length) since `since`, oldest first.

    They are one source's: `source`, or the one `/latestAggregate/{symbol}` serves now.
    """
    start, end = _window(since, None)
    reader = _state(request).reader
    current = _known(await reader.latest_aggregate(symbol, source), symbol, source)
    limit = min(limit, MAX_LIMIT)
    rows = await reader.aggregates(symbol, current.source, start, end, limit, every)
    return [Aggregate.from_row(row) for row in rows]


@router.get("/candles/{symbol}", responses=NOT_FOUND | DOWN, tags=["candles"])
async def candles(
    request: Request,
    symbol: Symbol,
    interval: Interval = "1m",
    since: Since = None,
    until: Until = None,
    limit: Limit = 1000,
    source: Source = None,
) -> list[Candle]:
    """A coin's candles starting in [since, until), oldest first; the newest `limit` if more.

    They are one source's: `source`, or the one `/latestAggregate/{symbol}` serves now if it
    has candles in the range, else the first in CRYPTO_AGGREGATE_SOURCE_PRIORITY that has (an
    unlisted source after every listed one). 404 when there is none.
    """
    start, end = _window(since, until)
    periods = periods_between(interval, _ms(start), _ms(end))
    reader = _state(request).reader
    limit = min(limit, MAX_LIMIT)
    rows = await reader.candles(symbol, interval, periods, start, end, limit, source)
    if not rows:
        whose = f" from {source}" if source else ""
        raise HTTPException(404, f"no {interval} candles of {symbol}{whose} in this range")
    return [Candle.from_row(row) for row in rows]


@router.get("/gaps/{symbol}", responses=DOWN, tags=["completeness"])
async def gaps(
    request: Request, symbol: Symbol, since: Since = None, until: Until = None
) -> list[GapSpan]:
    """A coin's recorded gaps overlapping [since, until]: open, repaired or unrepairable."""
    start, end = _window(since, until)
    found = await asyncio.to_thread(_state(request).backends.gaps, symbol, _ms(start), _ms(end) + 1)
    return [GapSpan.from_gap(gap) for gap in found]


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _subscription(
    request: Request,
    last_event_id: Annotated[
        str | None,
        Header(description="The id of the last event received: resume after it."),
    ] = None,
) -> AsyncIterator[Queue]:
    """A slot of the live push for the whole stream (the dependency ends when it does)."""
    async with _state(request).broadcaster.subscribe(last_event_id) as queue:
        yield queue


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={503: {"model": ErrorBody, "description": "Every stream slot is taken."}},
    tags=["live"],
)
async def stream(queue: Annotated[Queue, Depends(_subscription)]) -> AsyncIterable[ServerSentEvent]:
    """Server-Sent Events as data lands in Cassandra, each with an `id`.

    Events: `price` (every new tick), `latestPrice` (a coin's newest tick), `aggregate` (a
    coin's newest window changed), `pipeline` (every 5 s) and, on a reconnect whose
    `Last-Event-ID` cannot be resumed, `reset` (reload, then follow the stream).
    """
    yield ServerSentEvent(comment="subscribed")
    while (event := await queue.get()) is not None:
        yield event


def _health(backends: dict[str, str | None]) -> JSONResponse:
    """`Health` of these backends (None when up, else a short reason); 503 if one is down."""
    down = any(error is not None for error in backends.values())
    body = Health(
        status="unavailable" if down else "ok",
        backends={
            name: BackendState(up=error is None, error=error) for name, error in backends.items()
        },
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if down else 200)


HEALTH: Responses = {503: {"model": Health, "description": "A backend is down."}}


@router.get("/health", responses=HEALTH, tags=["operations"])
async def health(request: Request) -> JSONResponse:
    """Each backend's state (Cassandra, MongoDB, Kafka); 503 when one is down."""
    seen = await _state(request).observer.observe()
    return _health({name: seen.errors.get(name) for name in BACKENDS})


@router.get("/health/live", tags=["operations"])
async def live() -> Health:
    """200 whenever the process serves: for a restart policy (no backend is asked)."""
    return Health(status="ok", backends={})


@router.get("/health/ready", responses=HEALTH, tags=["operations"])
async def ready(request: Request) -> JSONResponse:
    """Whether the API can serve its data: Cassandra, the one backend its data routes read.

    503 when it does not answer; Kafka or MongoDB down do not matter here (see `/health`).
    """
    try:
        await _state(request).reader.ready()
    except BackendUnavailable as error:
        return _health({"cassandra": error.detail})
    return _health({"cassandra": None})


@router.get("/pipeline", tags=["operations"])
async def pipeline(request: Request) -> Pipeline:
    """Ticks in Kafka, ticks/s, the sink's lag, dead letters, documents, freshness."""
    state = _state(request)
    return state.meter.state(await state.observer.observe())


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
    tags=["operations"],
)
async def metrics(request: Request) -> Response:
    """Prometheus text format, read from Kafka, MongoDB and Cassandra (shared briefly)."""
    state = _state(request)
    seen = await state.observer.observe()
    text = await asyncio.to_thread(exposition, state.requests, seen, state.settings)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


MONGO_DOWN: Responses = {503: {"model": ErrorBody, "description": "MongoDB is unavailable."}}


@router.get("/alerts", responses=MONGO_DOWN, tags=["alerts"])
async def alerts(
    request: Request,
    limit: Limit = 100,
    since: Annotated[
        dt.datetime | None, Query(description="Only those fired since (ISO 8601; UTC by default).")
    ] = None,
    rule: Annotated[str | None, Query(description="Only this rule's.")] = None,
) -> list[Alert]:
    """The alerts the rules fired, newest first, each with the evidence that made it fire."""
    since_ms = _ms(_utc("since", since)) if since else None
    log = alert_log(request)
    return await asyncio.to_thread(log.recent, min(limit, MAX_LIMIT), since_ms, rule)
