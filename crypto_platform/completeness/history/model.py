"""What a source's history gives for one gap, and the rule for when it is too coarse to fill it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from crypto_platform.completeness.gaps import GAP_FACTOR, Gap
from crypto_platform.settings import Settings
from crypto_platform.ticks import InvalidTick, Tick

log = logging.getLogger(__name__)

__all__ = [
    "History",
    "HistorySource",
    "backfilled_tick",
    "duration",
    "inside",
    "too_coarse",
    "valid_ticks",
    "widest_spacing_ms",
]

Record = TypeVar("Record")


@dataclass(frozen=True)
class History:
    """A gap's ticks from the source's history, all inside the gap, every one `backfilled`.

    `granularity_ms` is the spacing of the history's points; `unrepairable` says why the
    gap cannot be filled whole (the history is too coarse, or has nothing for the span):
    the ticks there are still worth sending. `skipped` counts bad records left out.
    """

    ticks: list[Tick]
    granularity_ms: int
    unrepairable: str | None = None
    skipped: int = 0


class HistorySource(Protocol):
    """One source's history: what it holds for a gap; `close` releases its connections."""

    def fetch(self, gap: Gap) -> History: ...

    def close(self) -> None: ...


def backfilled_tick(gap: Gap, price: object, at_ms: int, fetched_ms: int, **fields: object) -> Tick:
    """A tick of the gap's source and coin from its history, marked so (`InvalidTick` if bad)."""
    return Tick.build(
        source=gap.source,
        symbol=gap.symbol,
        price=price,
        event_time_ms=at_ms,
        ingest_time_ms=fetched_ms,
        backfilled=True,
        **fields,
    )


def valid_ticks(
    records: Iterable[Record], build: Callable[[Record], Tick], what: str
) -> tuple[list[Tick], int]:
    """The ticks `build` makes of `records`, and how many were bad (the first few warned of)."""
    ticks, skipped = [], 0
    for record in records:
        try:
            ticks.append(build(record))
        except InvalidTick as error:
            skipped += 1
            if skipped <= 3:
                log.warning("%s: skipped a bad record: %s", what, error.reason)
    return ticks, skipped


def widest_spacing_ms(settings: Settings, source: str) -> int:
    """The widest spacing that leaves no gap: ticks further apart are one (`GAP_FACTOR`)."""
    return int(GAP_FACTOR * settings.gap_cadence_s[source] * 1000)


def too_coarse(history: str, granularity_ms: int, needed_ms: int) -> str | None:
    """Why `history` cannot fill a gap whole, or None when its points are close enough."""
    if granularity_ms <= needed_ms:
        return None
    return (
        f"{history} has a point every {duration(granularity_ms)}; "
        f"the gap needs one every {duration(needed_ms)} at most"
    )


def inside(gap: Gap, ticks: list[Tick]) -> list[Tick]:
    """The ticks in [start, end) of the gap: where the ledger says no tick exists."""
    return [tick for tick in ticks if gap.start_ms <= tick.event_time_ms < gap.end_ms]


_UNITS = ((86_400_000, "d"), (3_600_000, "h"), (60_000, "min"))


def duration(ms: int) -> str:
    """`1 h`, `5 min`, `6 s`: a spacing as people say it."""
    for size, unit in _UNITS:
        if ms >= size and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms / 1000:g} s"
