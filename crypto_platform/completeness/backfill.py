"""Fill a span's open gaps from each source's own history, through the normal path.

The history's ticks go to Kafka like live ones; the sink stores them in MongoDB and the
repair (`crypto-platform repair`) recomputes Cassandra's rows and windows from there.
Nothing here waits for either.

A backfilled tick keeps its source (it fills that source's gap), so it lives among the
live ticks' identities (`source:symbol:event_time_ms`) without taking one of theirs: it is
made only inside a gap, [start, end), a span where the ledger found no tick of that source
and coin; and just before sending, one bounded query over the gap's span drops every tick
whose identity MongoDB holds by then (a live tick that came late, or this backfill's own
from an earlier run). All that query cannot see is a live tick of the very same
millisecond on its way to the sink at that moment; the sink inserts and never replaces, so
whichever of the two comes first is kept, once.

Idempotent: a second run over the span finds the gaps filled (repaired, once the sink has
stored the first run's ticks) and sends nothing; before then it finds the ticks it would
send already stored, or sends them again, which the sink keeps once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.collection import Collection

from crypto_platform.completeness.gaps import Gap, mark_unrepairable
from crypto_platform.completeness.history import HISTORY_OF, Histories, WeightBudget
from crypto_platform.completeness.ledger import find_gaps, gap_row
from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo
from crypto_platform.streaming.producer import TickProducer
from crypto_platform.ticks import Tick

log = logging.getLogger(__name__)

__all__ = ["BackfillStats", "GapFill", "backfill", "not_stored"]


@dataclass
class GapFill:
    """What the backfill did for one open gap."""

    gap: Gap
    fetched: int = 0
    already_stored: int = 0
    sent: int = 0
    skipped: int = 0
    granularity_ms: int | None = None
    unrepairable: str | None = None
    error: str | None = None

    def row(self) -> dict[str, Any]:
        judged = self.gap
        if self.unrepairable:
            judged = dataclasses.replace(judged, status="unrepairable", reason=self.unrepairable)
        return {
            **gap_row(judged),
            "fetched": self.fetched,
            "already_stored": self.already_stored,
            "sent": self.sent,
            "skipped": self.skipped,
            "granularity_s": None if self.granularity_ms is None else self.granularity_ms / 1000,
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class BackfillStats:
    """A backfill of [since, until): the ledger's gaps there and what each open one got."""

    since_ms: int
    until_ms: int
    statuses: Counter[str] = field(default_factory=Counter)  # the span's gaps in the ledger
    filled: list[GapFill] = field(default_factory=list)
    not_backfilled: int = 0  # open gaps of a source without history (replay) or cadence
    seconds: float = 0.0

    def total(self, name: str) -> int:
        return sum(getattr(fill, name) for fill in self.filled)

    @property
    def failed(self) -> int:
        return sum(1 for fill in self.filled if fill.error)

    def message(self) -> str:
        if not self.filled:
            judged = ", ".join(f"{n} {status}" for status, n in sorted(self.statuses.items()))
            none = f"{self.not_backfilled} open without a history" if self.not_backfilled else ""
            return (
                f"nothing to backfill: {_gaps(self.statuses.total())} in the span, "
                f"{none or 'none open'} ({judged or '-'})"
            )
        sent, failed, opened = self.total("sent"), self.failed, _gaps(len(self.filled), "open ")
        if not sent and not failed:
            return f"nothing to send: the history of the {opened} is stored already"
        retry = f"; {failed} failed and stay open: run again" if failed else ""
        return f"sent {sent} ticks for {opened}{retry}"

    def summary(self) -> dict[str, Any]:
        fetched = self.total("fetched")
        return {
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "message": self.message(),
            "gaps": dict(self.statuses),
            "open": len(self.filled),
            "fetched": fetched,
            "already_stored": self.total("already_stored"),
            "sent": self.total("sent"),
            "unrepairable": sum(1 for fill in self.filled if fill.unrepairable),
            "failed": self.failed,
            "not_backfilled": self.not_backfilled,
            "seconds": round(self.seconds, 3),
            "ticks_per_s": round(fetched / self.seconds, 1) if self.seconds else 0.0,
            "per_gap": [fill.row() for fill in self.filled],
        }


def backfill(
    settings: Settings,
    since_ms: int,
    until_ms: int,
    symbols: list[str] | None = None,
    *,
    weight_budget: WeightBudget | None = None,
    progress: Callable[[str], None] = log.info,
) -> BackfillStats:
    """Send the history of every open gap in [since, until) to Kafka; mark what it cannot fill."""
    started = time.monotonic()
    ledger_gaps = find_gaps(settings, since_ms, until_ms, symbols)
    stats = BackfillStats(since_ms, until_ms, Counter(gap.status for gap in ledger_gaps))
    opened = [gap for gap in ledger_gaps if gap.status == "open"]
    # A source with a history and a cadence (the ledger may hold gaps of one no longer checked).
    todo = [g for g in opened if g.source in HISTORY_OF and g.source in settings.gap_cadence_s]
    stats.not_backfilled = len(opened) - len(todo)
    if todo:
        client = mongo.connect(settings)
        prices = mongo.prices_collection(client, settings)
        ledger = mongo.gaps_collection(client, settings)
        histories = Histories(settings, prices, weight_budget=weight_budget)
        producer = TickProducer(settings)
        try:
            for gap in todo:
                fill = _fill(histories, prices, ledger, producer, gap)
                stats.filled.append(fill)
                progress(_progress_line(fill, stats, started))
            producer.flush()
        finally:
            histories.close()
            producer.close()
            client.close()
    stats.seconds = time.monotonic() - started
    progress(stats.message())
    return stats


def _fill(
    histories: Histories,
    prices: Collection,
    ledger: Collection,
    producer: TickProducer,
    gap: Gap,
) -> GapFill:
    """One gap: its history, less what is stored, sent; unrepairable marked in the ledger."""
    fill = GapFill(gap)
    try:
        history = histories.fetch(gap)
    except PlatformError as error:
        fill.error = str(error)
        log.warning("backfill %s %s: %s (the gap stays open)", gap.source, gap.symbol, error)
        return fill
    fresh = not_stored(prices, gap, history.ticks)
    for tick in fresh:
        producer.send(tick)
    producer.check()
    fill.fetched, fill.sent, fill.skipped = len(history.ticks), len(fresh), history.skipped
    fill.already_stored = fill.fetched - fill.sent
    fill.granularity_ms = history.granularity_ms
    if history.unrepairable:
        fill.unrepairable = history.unrepairable
        mark_unrepairable(ledger, gap, history.unrepairable)
    return fill


def not_stored(prices: Collection, gap: Gap, ticks: list[Tick]) -> list[Tick]:
    """The ticks whose identity MongoDB does not hold: one query over the gap's span."""
    stored = {
        document["_id"]
        for document in prices.find(
            {
                "symbol": gap.symbol,
                "source": gap.source,
                "event_time_ms": {"$gte": gap.start_ms, "$lt": gap.end_ms},
            },
            {"_id": 1},
        )
    }
    return [tick for tick in ticks if tick.identity not in stored]


def _gaps(count: int, kind: str = "") -> str:
    return f"{count} {kind}gap" + ("" if count == 1 else "s")


def _progress_line(fill: GapFill, stats: BackfillStats, started: float) -> str:
    gap = gap_row(fill.gap)
    rate = stats.total("fetched") / max(time.monotonic() - started, 1e-9)
    outcome = fill.error or fill.unrepairable or "filled"
    return (
        f"backfill {gap['source']} {gap['symbol']} {gap['start']}..{gap['end']}: "
        f"{fill.fetched} fetched, {fill.already_stored} already stored, {fill.sent} sent; "
        f"{outcome} ({len(stats.filled)} gaps, {rate:.0f} ticks/s)"
    )
