"""The JSON the API answers with: the seed's field names, numbers as numbers, UTC times."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from crypto_platform.candles import INTERVALS, CandleInterval
from crypto_platform.completeness.gaps import Gap


def utc(moment: dt.datetime) -> dt.datetime:
    """Cassandra hands back naive UTC datetimes: say so, so JSON carries the `Z`."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class LatestPrice(BaseModel):
    """The newest tick of a coin (`latest_prices`)."""

    symbol_coin: str
    name_coin: str | None
    price: float
    timestamp: dt.datetime = Field(description="When the source priced it (ISO 8601, UTC).")
    market_cap: float | None
    volume: float | None = Field(description="24 h volume.")
    percent_change_24hr: float | None
    number_of_markets: int | None
    total_supply: float | None
    uuid: str | None
    id: str = Field(description="The tick's identity, source:symbol:event_time_ms.")
    source: str = Field(description="Where the price came from; `simulated` is not a market.")
    quote: str | None

    @classmethod
    def from_row(cls, row: Any) -> LatestPrice:
        moment = utc(row.event_time)
        return cls(
            symbol_coin=row.symbol,
            name_coin=row.name,
            price=row.price,
            timestamp=moment,
            market_cap=row.market_cap,
            volume=row.volume_24h,
            percent_change_24hr=row.change_24h_pct,
            number_of_markets=row.number_of_markets,
            total_supply=row.total_supply,
            uuid=row.uuid,
            id=f"{row.source}:{row.symbol}:{int(moment.timestamp() * 1000)}",
            source=row.source,
            quote=row.quote,
        )


class PricePoint(BaseModel):
    """One tick of a coin's history (`prices_by_symbol`)."""

    symbol_coin: str
    price: float
    timestamp: dt.datetime
    source: str

    @classmethod
    def from_row(cls, row: Any) -> PricePoint:
        return cls(
            symbol_coin=row.symbol,
            price=row.price,
            timestamp=utc(row.event_time),
            source=row.source,
        )


class Aggregate(BaseModel):
    """The three means of one moving window of a coin, from one source."""

    symbol_coin: str
    source: str = Field(description="The source whose ticks the window averages.")
    arithmetic_mean: float
    geometric_mean: float
    harmonic_mean: float
    start_time: dt.datetime
    end_time: dt.datetime
    window_seconds: int
    tick_count: int
    updated_at: dt.datetime | None = Field(description="When the window was last written.")

    @classmethod
    def from_row(cls, row: Any) -> Aggregate:
        return cls(
            symbol_coin=row.symbol,
            source=row.source,
            arithmetic_mean=row.arithmetic_mean,
            geometric_mean=row.geometric_mean,
            harmonic_mean=row.harmonic_mean,
            start_time=utc(row.window_start),
            end_time=utc(row.window_end),
            window_seconds=row.window_seconds,
            tick_count=row.tick_count,
            updated_at=utc(row.updated_at) if row.updated_at else None,
        )


class Candle(BaseModel):
    """Open, high, low and close of a coin's ticks from one source in [start, end)."""

    symbol_coin: str
    source: str = Field(description="The source whose ticks it holds (a candle never mixes).")
    interval: CandleInterval
    start: dt.datetime = Field(description="Its first moment (ISO 8601, UTC).")
    end: dt.datetime = Field(description="Start plus the interval (not included).")
    open: float
    high: float
    low: float
    close: float = Field(description="The last price so far while the candle is open.")
    tick_count: int

    @classmethod
    def from_row(cls, row: Any) -> Candle:
        start = utc(row.start)
        return cls(
            symbol_coin=row.symbol,
            source=row.source,
            interval=row.interval,
            start=start,
            end=start + dt.timedelta(milliseconds=INTERVALS[row.interval]),
            open=row.open,
            high=row.high,
            low=row.low,
            close=row.close,
            tick_count=row.tick_count,
        )


class GapSpan(BaseModel):
    """A span in which a source sent no tick of a coin though its cadence says it should."""

    source: str
    symbol: str
    start: dt.datetime = Field(description="The first moment without a tick (ISO 8601, UTC).")
    end: dt.datetime = Field(description="The next tick, or when the gap was last seen open.")
    ticks_expected: int
    status: Literal["open", "repaired", "unrepairable"]
    reason: str | None = Field(None, description="Why it cannot be repaired.")

    @classmethod
    def from_gap(cls, gap: Gap) -> GapSpan:
        return cls(
            source=gap.source,
            symbol=gap.symbol,
            start=dt.datetime.fromtimestamp(gap.start_ms / 1000, dt.UTC),
            end=dt.datetime.fromtimestamp(gap.end_ms / 1000, dt.UTC),
            ticks_expected=gap.expected,
            status=gap.status,
            reason=gap.reason,
        )


class BackendState(BaseModel):
    """Whether a backend answered, and how it failed if not."""

    up: bool
    error: str | None = None


class Health(BaseModel):
    """`/health`: every backend's state."""

    status: str = Field(description="`ok`, or `unavailable` when a backend is down (HTTP 503).")
    backends: dict[str, BackendState]


class Pipeline(BaseModel):
    """What Kafdrop showed, and how fresh the data is: the dashboard's pipeline panel."""

    ticks_total: int | None = Field(description="Messages in the tick topic (end offsets).")
    ticks_per_s: float | None = Field(description="Since the previous reading of this app.")
    consumer_lag: int | None = Field(description="The MongoDB sink group's lag.")
    dlq_messages: int | None
    mongo_documents: int | None
    freshness_s: float | None = Field(description="Age of the newest tick of any coin.")
    backends: dict[str, BackendState]


class ErrorBody(BaseModel):
    """Every error answer: what went wrong, and which backend when one is down."""

    detail: str
    backend: str | None = None


class Alert(BaseModel):
    """An alert: a rule's condition became true (an episode), with what showed it."""

    id: str = Field(description="`<rule>:<subject>:<n>`, the subject's n-th episode.")
    rule: str
    kind: str = Field(description="`price`, `move`, `gap` or `check`.")
    subject: str = Field(description="What it is about: a coin, a source's coin, a check.")
    symbol: str | None
    message: str
    fired_at: dt.datetime = Field(description="When the condition became true (ISO 8601, UTC).")
    cleared_at: dt.datetime | None = Field(description="When it stopped holding; null: it holds.")
    delivered: bool = Field(description="Whether the webhook accepted it.")
    evidence: dict[str, Any] = Field(description="Prices and times, the gap, or the check result.")
