"""Gaps: spans in which a (source, coin) being collected has no tick though it should.

A gap is two consecutive ticks of a source and coin further apart than `GAP_FACTOR` times
the source's cadence (`CRYPTO_GAP_CADENCE_S`), or the open span from its last tick to now
when nothing arrives (whatever stopped: the source, the producer, the network, the whole
pipeline). Detection reads only the span asked for (and the one tick before it, to see a
gap that began earlier), through the `event_time` and `symbol_source_event_time` indexes:
each (source, coin) costs three index seeks and its ticks in the span, whether it has
ticks or not.

What was found is kept in MongoDB (`gaps`, beside the ticks), so a gap keeps its history:
`open` while the ticks are missing, `repaired` once they are there (backfilled), or
`unrepairable` with the reason (the source's history is too coarse, or gone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any, Literal

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection

from crypto_platform.storage.mongo import plain_ints
from crypto_platform.ticks import now_ms

__all__ = [
    "GAP_FACTOR",
    "LOOKBACK_MS",
    "Gap",
    "detect",
    "from_document",
    "mark_unrepairable",
    "record",
    "recorded",
    "sources_and_symbols",
]

GAP_FACTOR = 3  # ticks this many cadences apart (or more) are a gap
LOOKBACK_MS = 86_400_000  # how far before a span the tick before it is looked for
NEAR_SPANS_MS = (60_000, 3_600_000, LOOKBACK_MS)  # where, nearest first (see `_nearest`)
Status = Literal["open", "repaired", "unrepairable"]


@dataclass(frozen=True)
class Gap:
    """[start_ms, end_ms): no tick of `source` for `symbol`, though `expected` were due."""

    source: str
    symbol: str
    start_ms: int
    end_ms: int
    expected: int
    status: Status = "open"
    reason: str | None = None

    @property
    def key(self) -> str:
        return f"{self.source}:{self.symbol}:{self.start_ms}"

    def document(self) -> dict[str, Any]:
        return {"_id": self.key, **asdict(self)}

    def overlaps(self, since_ms: int, until_ms: int) -> bool:
        return self.start_ms < until_ms and self.end_ms > since_ms


def sources_and_symbols(prices: Collection, since_ms: int, until_ms: int) -> list[tuple[str, str]]:
    """The (source, coin) pairs with ticks in the span: a group over the span's slice."""
    pipeline: list[dict[str, Any]] = [
        {"$match": {"event_time_ms": {"$gte": since_ms, "$lt": until_ms}}},
        {"$group": {"_id": {"source": "$source", "symbol": "$symbol"}}},
    ]
    return sorted(
        (row["_id"]["source"], row["_id"]["symbol"]) for row in prices.aggregate(pipeline)
    )


def detect(
    prices: Collection,
    cadence_s: dict[str, float],
    since_ms: int,
    until_ms: int,
    *,
    symbols: Iterable[str],
    now: int | None = None,
) -> list[Gap]:
    """The gaps overlapping [since, until) in the ticks MongoDB holds now.

    Checked: every source with a cadence, for the coins given and any other coin with ticks
    in the span. A pair counts as collected if it has a tick in the span or in the day
    before it; its edges are that day's last tick, the span's ticks, and the first tick
    after the span (or now, if none has come: the gap is open).
    """
    now = now_ms() if now is None else now
    pairs = {(source, symbol) for source in cadence_s for symbol in symbols}
    pairs |= {p for p in sources_and_symbols(prices, since_ms, until_ms) if p[0] in cadence_s}
    found = []
    for source, symbol in sorted(pairs):
        cadence_ms = int(cadence_s[source] * 1000)
        edges = _edges(prices, source, symbol, since_ms, until_ms)
        if not edges:
            continue
        if edges[-1] < until_ms:  # nothing after the span yet: open up to now
            edges.append(max(now, edges[-1]))
        for before, after in pairwise(edges):
            if after - before > GAP_FACTOR * cadence_ms:
                gap = Gap(source, symbol, before + 1, after, (after - before) // cadence_ms - 1)
                if gap.overlaps(since_ms, until_ms):
                    found.append(gap)
    return found


def _edges(prices: Collection, source: str, symbol: str, since_ms: int, until_ms: int) -> list[int]:
    """The pair's event times in the span, with the last before it and the first after it."""
    query = {"symbol": symbol, "source": source}
    before = _nearest(prices, query, since_ms, before=True)
    inside = prices.find(
        {**query, "event_time_ms": {"$gte": since_ms, "$lt": until_ms}}, {"event_time_ms": 1}
    ).sort("event_time_ms", ASCENDING)
    times = [int(doc["event_time_ms"]) for doc in inside]
    if before is None and not times:
        return []  # not collected around this span
    after = _nearest(prices, query, until_ms, before=False)
    return [*([before] if before is not None else []), *times, *([after] if after else [])]


def _nearest(
    prices: Collection, query: dict[str, Any], edge_ms: int, *, before: bool
) -> int | None:
    """The pair's last tick before the edge (within LOOKBACK_MS), or its first at or after it.

    Looked for in spans growing away from the edge (`NEAR_SPANS_MS`): the local SecantusDB
    fetches and sorts every tick of a range before taking the first, so a day's range cost
    a day's ticks (1 s per coin at a tick a second), where the nearest minute nearly always
    holds the tick. After the edge, past the spans, the rest of the history is the last
    resort (a pair that stopped for over a day).
    """
    order = DESCENDING if before else ASCENDING
    spans: list[dict[str, int]] = [
        {"$gte": edge_ms - span, "$lt": edge_ms}
        if before
        else {"$gte": edge_ms, "$lt": edge_ms + span}
        for span in NEAR_SPANS_MS
    ]
    if not before:
        spans.append({"$gte": edge_ms + NEAR_SPANS_MS[-1]})
    for bounds in spans:
        found = prices.find_one(
            {**query, "event_time_ms": bounds},
            {"event_time_ms": 1},
            sort=[("event_time_ms", order)],
        )
        if found is not None:
            return int(found["event_time_ms"])
    return None


def record(ledger: Collection, detected: list[Gap], since_ms: int, until_ms: int) -> list[Gap]:
    """Merge what was detected into the ledger; return the ledger's gaps in the span.

    A new gap is recorded `open`. A recorded gap no longer detected was filled: it becomes
    `repaired`. A gap inside one already judged (repaired at a coarser granularity, or
    unrepairable) is that one, not a new gap.
    """
    known = recorded(ledger, since_ms, until_ms)
    judged = [g for g in known if g.status != "open"]
    detected = [d for d in detected if not any(_within(d, g) for g in judged)]
    stamp = now_ms()
    for gap in detected:
        ledger.update_one(
            {"_id": gap.key},
            {
                "$set": {"end_ms": gap.end_ms, "expected": gap.expected},
                "$setOnInsert": {**_fields(gap), "detected_at_ms": stamp},
            },
            upsert=True,
        )
    still = {gap.key for gap in detected}
    for gap in known:
        if gap.status == "open" and gap.key not in still:
            ledger.update_one(
                {"_id": gap.key}, {"$set": {"status": "repaired", "repaired_at_ms": stamp}}
            )
    return recorded(ledger, since_ms, until_ms)


def mark_unrepairable(ledger: Collection, gap: Gap, reason: str) -> None:
    """What the source's history can no longer fill, with why."""
    ledger.update_one(
        {"_id": gap.key}, {"$set": {"status": "unrepairable", "reason": reason}}, upsert=False
    )


def recorded(ledger: Collection, since_ms: int, until_ms: int) -> list[Gap]:
    """The ledger's gaps overlapping [since, until), oldest first."""
    cursor = ledger.find({"start_ms": {"$lt": until_ms}, "end_ms": {"$gt": since_ms}}).sort(
        [("start_ms", ASCENDING), ("source", ASCENDING), ("symbol", ASCENDING)]
    )
    return [from_document(doc) for doc in cursor]


def from_document(document: dict[str, Any]) -> Gap:
    """A ledger document as a `Gap` (its bookkeeping fields left out)."""
    plain = plain_ints(document)
    fields: dict[str, Any] = {name: plain.get(name) for name in Gap.__dataclass_fields__}
    return Gap(**fields)


def _fields(gap: Gap) -> dict[str, Any]:
    fields = asdict(gap)
    del fields["end_ms"], fields["expected"]  # set (and updated) by `$set`
    return fields


def _within(inner: Gap, outer: Gap) -> bool:
    return (
        inner.source == outer.source
        and inner.symbol == outer.symbol
        and outer.start_ms <= inner.start_ms
        and inner.end_ms <= outer.end_ms
    )
