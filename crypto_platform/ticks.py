"""The tick: one price of one coin at one moment, as it travels through Kafka (schema v1).

Validated here and only here: sources build ticks through `Tick(...)`, the sink parses
Kafka bytes through `Tick.from_json`, and both get the same rules and the same errors.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "INT64_MAX",
    "MAX_EVENT_AHEAD_MS",
    "PRICE_MAX",
    "PRICE_MIN",
    "SOURCES",
    "SYMBOL_PATTERN",
    "InvalidTick",
    "SourceTag",
    "Tick",
    "judged_at",
    "now_ms",
]

SourceTag = Literal["binance", "binance-ws", "coinranking", "simulated", "replay"]
SOURCES: tuple[str, ...] = SourceTag.__args__  # type: ignore[attr-defined]

PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]

# Every store and engine downstream holds a signed 64-bit integer at most (BSON, Arrow,
# Cassandra's bigint): a larger count is refused here, not by a crash there.
INT64_MAX = 2**63 - 1
# Prices a coin can have, with room: inside it a window's sums of p and 1/p over millions
# of ticks stay finite, so every mean is a number (no inf from 1e308, no 1/5e-324).
PRICE_MIN = 1e-15
PRICE_MAX = 1e15
# Free text from a source (a coin's name, its id there): long enough for any real one.
TEXT_MAX = 200
Text = Annotated[str, Field(max_length=TEXT_MAX)]

# A base asset as the platform names it (BTC, ETH, 1INCH): the rule every reader applies too.
SYMBOL_PATTERN = r"^[A-Z0-9]{1,20}$"


# A source's clock may run a little ahead of ours; further ahead is a bad timestamp. Both
# times are bounded by the reader's clock too: a tick from the far future would move Spark's
# watermark past every later tick, and beyond year 9999 no date type can hold it.
MAX_EVENT_AHEAD_MS = 5 * 60 * 1000


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch: the unit of every tick timestamp."""
    return time.time_ns() // 1_000_000


JUDGED_AT = "judged_at_ms"


def judged_at(written_ms: int | None) -> int:
    """The moment a tick's times are judged by: when its record was written, at the latest now.

    The sink and Spark read a record at different moments; judged by the reader's clock
    alone, a tick a little ahead could be refused by one and taken by the other a minute
    later. The record's timestamp is the same for both; a producer's clock ahead of ours
    (or a record without a timestamp, -1) falls back to the reader's clock.
    """
    now = now_ms()
    return min(written_ms, now) if written_ms is not None and written_ms >= 0 else now


class InvalidTick(ValueError):
    """A message that is not a valid tick; `reason` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Tick(BaseModel):
    """A price tick; identity `source:symbol:event_time_ms` is its MongoDB `_id`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: Literal[1] = 1
    source: SourceTag
    symbol: Annotated[str, Field(pattern=SYMBOL_PATTERN)]
    price: Annotated[float, Field(ge=PRICE_MIN, le=PRICE_MAX, allow_inf_nan=False)]
    event_time_ms: Annotated[int, Field(gt=0)]
    ingest_time_ms: Annotated[int, Field(gt=0)]
    quote: Literal["USD", "USDT"] = "USD"
    name: Text | None = None
    market_cap: PositiveFinite | None = None
    volume_24h: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    change_24h_pct: Annotated[float, Field(allow_inf_nan=False)] | None = None
    number_of_markets: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    total_supply: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    uuid: Text | None = None
    # Set on a tick fetched afterwards from the source's history to fill a gap (a kline's
    # close, a history point, a regenerated simulated price); absent on live ticks.
    backfilled: bool | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price_is_a_number(cls, value: Any) -> Any:
        # Sources hand prices as strings (Coinranking, Binance); "abc" or "" must not pass.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"price is not a number: {value!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("price is not finite")
        return value

    @model_validator(mode="after")
    def _times_not_far_ahead(self, info: ValidationInfo) -> Tick:
        # Against the tick's own ingest time, and both against the clock of its reader
        # (see `judged_at`), so that every reader judges one Kafka record alike.
        ahead_minutes = MAX_EVENT_AHEAD_MS // 60_000
        if self.event_time_ms > self.ingest_time_ms + MAX_EVENT_AHEAD_MS:
            raise ValueError(
                f"event_time_ms is more than {ahead_minutes} minutes after ingest_time_ms"
            )
        latest = (info.context or {}).get(JUDGED_AT, now_ms()) + MAX_EVENT_AHEAD_MS
        for name, value in (
            ("event_time_ms", self.event_time_ms),
            ("ingest_time_ms", self.ingest_time_ms),
        ):
            if value > latest:
                raise ValueError(f"{name} is more than {ahead_minutes} minutes in the future")
        return self

    @property
    def identity(self) -> str:
        return f"{self.source}:{self.symbol}:{self.event_time_ms}"

    def to_json(self) -> bytes:
        """The Kafka message value: compact JSON without the absent optional fields.

        pydantic-core's serializer, called directly: `model_dump_json`'s Python wrapper
        doubles the cost, and this runs once per tick sent.
        """
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)

    def to_document(self) -> dict[str, Any]:
        """The MongoDB document: the tick's fields, `_id` = its identity, and `event_time`.

        `event_time` is the event time as a date: what a TTL index (CRYPTO_MONGO_TTL_DAYS)
        and date queries need, since MongoDB expires documents by a date field only.
        """
        document = self.model_dump(exclude_none=True)
        document["_id"] = self.identity
        document["event_time"] = dt.datetime.fromtimestamp(self.event_time_ms / 1000, dt.UTC)
        return document

    @classmethod
    def from_json(cls, data: bytes | str | None, *, written_ms: int | None = None) -> Tick:
        """Parse a Kafka message value; any problem becomes an `InvalidTick` with a reason.

        `written_ms` is the Kafka record's timestamp: with it, every reader of the record
        judges its times by the same clock (`judged_at`).
        """
        if not data:
            raise InvalidTick("message: empty value (a tombstone)")
        try:
            return cls.model_validate_json(data, context={JUDGED_AT: judged_at(written_ms)})
        except ValidationError as error:
            raise InvalidTick(_one_line(error)) from None

    @classmethod
    def build(cls, **fields: Any) -> Tick:
        """Build a tick from a source's fields; any problem becomes an `InvalidTick`."""
        try:
            return cls.model_validate(fields)
        except ValidationError as error:
            raise InvalidTick(_one_line(error)) from None


def _one_line(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
