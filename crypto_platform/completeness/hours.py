"""One hour's completeness: per source and coin, ticks stored against ticks expected, and gaps.

What the hourly `completeness/hourly_completeness` asset records. Every read is bounded by
the hour: a group over the hour's slice (the `event_time` index), and gap detection over
the hour (see gaps.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crypto_platform.completeness.gaps import Gap
from crypto_platform.completeness.ledger import find_gaps
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo

__all__ = ["HOUR_MS", "HourCompleteness", "hour_completeness"]

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class HourCompleteness:
    """The hour's rows (one per source and coin) and the gaps overlapping it."""

    start_ms: int
    rows: list[dict[str, Any]]
    gaps: list[Gap]

    @property
    def unrepaired(self) -> list[Gap]:
        return [gap for gap in self.gaps if gap.status != "repaired"]


def hour_completeness(settings: Settings, start_ms: int) -> HourCompleteness:
    """Stored and expected ticks per source and coin in [start, start + 1 h), and its gaps."""
    end_ms = start_ms + HOUR_MS
    gaps = find_gaps(settings, start_ms, end_ms)
    client = mongo.connect(settings)
    try:
        stored = _stored(mongo.prices_collection(client, settings), start_ms, end_ms)
    finally:
        client.close()
    rows = []
    for (source, symbol), count in sorted(stored.items()):
        cadence_s = settings.gap_cadence_s.get(source)
        mine = [g for g in gaps if (g.source, g.symbol) == (source, symbol)]
        missing_ms = sum(_clipped(g, start_ms, end_ms) for g in mine if g.status != "repaired")
        rows.append(
            {
                "source": source,
                "symbol": symbol,
                "stored": count,
                "expected": int(HOUR_MS / 1000 / cadence_s) if cadence_s else None,
                "unrepaired_gaps": sum(1 for g in mine if g.status != "repaired"),
                "missing_s": round(missing_ms / 1000, 3),
                "complete_pct": round(100 * (1 - missing_ms / HOUR_MS), 3),
            }
        )
    return HourCompleteness(start_ms, rows, gaps)


def _stored(prices: Any, start_ms: int, end_ms: int) -> dict[tuple[str, str], int]:
    pipeline: list[dict[str, Any]] = [
        {"$match": {"event_time_ms": {"$gte": start_ms, "$lt": end_ms}}},
        {"$group": {"_id": {"source": "$source", "symbol": "$symbol"}, "count": {"$sum": 1}}},
    ]
    return {
        (row["_id"]["source"], row["_id"]["symbol"]): int(row["count"])
        for row in prices.aggregate(pipeline)
    }


def _clipped(gap: Gap, start_ms: int, end_ms: int) -> int:
    return max(0, min(gap.end_ms, end_ms) - max(gap.start_ms, start_ms))
