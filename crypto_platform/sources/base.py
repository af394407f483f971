"""What every price source is: an iterator of tick batches that survives bad answers."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from crypto_platform.sources.http import SourceUnavailable
from crypto_platform.ticks import InvalidTick, Tick

log = logging.getLogger(__name__)


# Distinct skip reasons a source keeps; a reason names the bad value, so a feed of ever new
# bad values would otherwise grow the counter for as long as the producer runs.
MAX_SKIP_REASONS = 100
OTHER_REASONS = "(other reasons)"


@dataclass
class SourceStats:
    """Counts a source keeps, for progress logs and Dagster metadata."""

    ticks: int = 0
    skipped: int = 0
    failed_requests: int = 0
    switches: int = 0  # `auto` only: changes of source after the start
    skip_reasons: Counter[str] = field(default_factory=Counter)

    def skip(self, source: str, reason: str) -> None:
        """Count a bad record or payload and warn (the first few of each reason)."""
        self.skipped += 1
        if reason not in self.skip_reasons and len(self.skip_reasons) >= MAX_SKIP_REASONS:
            reason = OTHER_REASONS
        self.skip_reasons[reason] += 1
        if self.skip_reasons[reason] <= 3:
            log.warning("%s: skipped a bad record: %s", source, reason)


class PriceSource(ABC):
    """A source of ticks. `batches` yields until `stop` is set or the source runs out."""

    name: str

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols
        self.stats = SourceStats()

    @abstractmethod
    def batches(self, stop: threading.Event) -> Iterator[list[Tick]]:
        """Yield lists of valid ticks; bad records are counted in `stats`, never raised."""

    def close(self) -> None:  # noqa: B027 - sources without connections have nothing to close
        """Release connections."""

    def _valid(self, **fields: object) -> Tick | None:
        """Build a tick, or count the record as skipped with the reason."""
        try:
            tick = Tick.build(**fields)
        except InvalidTick as error:
            self.stats.skip(self.name, f"{fields.get('symbol', '?')}: {error.reason}")
            return None
        self.stats.ticks += 1
        return tick


class PollingSource(PriceSource):
    """A source asked every `interval` seconds; a failed poll is logged and retried later."""

    def __init__(self, symbols: list[str], interval: float) -> None:
        super().__init__(symbols)
        self.interval = interval
        self._primed: list[Tick] = []

    def prime(self, ticks: list[Tick]) -> None:
        """Ticks already fetched for this source (by a probe): yielded first, not lost."""
        self._primed = list(ticks)
        self.stats.ticks += len(ticks)

    @abstractmethod
    def poll(self) -> list[Tick]:
        """One request: the current price of every symbol that answered well."""

    def batches(self, stop: threading.Event) -> Iterator[list[Tick]]:
        if self._primed:
            primed, self._primed = self._primed, []
            yield primed
            stop.wait(self.interval)
        while not stop.is_set():
            try:
                ticks = self.poll()
            except SourceUnavailable as error:
                self.stats.failed_requests += 1
                log.warning("%s: %s; trying again in %.1fs", self.name, error, self.interval)
                ticks = []
            if ticks:
                yield ticks
            stop.wait(self.interval)
