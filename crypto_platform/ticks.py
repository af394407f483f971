"""The tick: one price of one coin at one moment, as it travels through Kafka (schema v1).

Validated here and only here: sources build ticks through `Tick(...)`, the sink parses
Kafka bytes through `Tick.from_json`, and both get the same rules and the same errors.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["MAX_EVENT_AHEAD_MS", "SOURCES", "SYMBOL_PATTERN", "InvalidTick", "Tick", "now_ms"]

SourceTag = Literal["binance", "binance-ws", "coinranking", "simulated", "replay"]
SOURCES: tuple[str, ...] = SourceTag.__args__  # type: ignore[attr-defined]

PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]

# A base asset as the platform names it (BTC, ETH, 1INCH): the rule every reader applies too.
SYMBOL_PATTERN = r"^[A-Z0-9]{1,20}$"


# A source's clock may run a little ahead of ours; further ahead is a bad timestamp.
MAX_EVENT_AHEAD_MS = 5 * 60 * 1000


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch: the unit of every tick timestamp."""
    return time.time_ns() // 1_000_000


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
    price: PositiveFinite
    event_time_ms: Annotated[int, Field(gt=0)]
    ingest_time_ms: Annotated[int, Field(gt=0)]
    quote: Literal["USD", "USDT"] = "USD"
    name: str | None = None
    market_cap: PositiveFinite | None = None
    volume_24h: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    change_24h_pct: Annotated[float, Field(allow_inf_nan=False)] | None = None
    number_of_markets: Annotated[int, Field(ge=0)] | None = None
    total_supply: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    uuid: str | None = None

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
    def _event_time_not_far_ahead(self) -> Tick:
        # Relative to the tick's own ingest time, so every reader judges it alike, any time.
        if self.event_time_ms > self.ingest_time_ms + MAX_EVENT_AHEAD_MS:
            raise ValueError(
                f"event_time_ms is more than {MAX_EVENT_AHEAD_MS // 60_000} minutes "
                "after ingest_time_ms"
            )
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
    def from_json(cls, data: bytes | str | None) -> Tick:
        """Parse a Kafka message value; any problem becomes an `InvalidTick` with a reason."""
        if not data:
            raise InvalidTick("message: empty value (a tombstone)")
        try:
            return cls.model_validate_json(data)
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
