"""The gaps of a span, found in MongoDB and merged into the ledger: what `gaps` prints."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crypto_platform.completeness.gaps import Gap, detect, record
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo

__all__ = ["find_gaps", "gap_row"]


def find_gaps(
    settings: Settings, since_ms: int, until_ms: int, symbols: list[str] | None = None
) -> list[Gap]:
    """Detect the span's gaps, record them, and return the ledger's view of the span."""
    client = mongo.connect(settings)
    try:
        prices = mongo.prices_collection(client, settings)
        coins = symbols or list(settings.symbols)
        found = detect(prices, settings.gap_cadence_s, since_ms, until_ms, symbols=coins)
        ledger = mongo.gaps_collection(client, settings)
        gaps = record(ledger, found, since_ms, until_ms)
    finally:
        client.close()
    return [gap for gap in gaps if symbols is None or gap.symbol in symbols]


def gap_row(gap: Gap) -> dict[str, Any]:
    """A gap as `gaps` prints it: times in ISO, UTC."""
    return {
        "source": gap.source,
        "symbol": gap.symbol,
        "start": _iso(gap.start_ms),
        "end": _iso(gap.end_ms),
        "seconds": round((gap.end_ms - gap.start_ms) / 1000, 3),
        "ticks_expected": gap.expected,
        "status": gap.status,
        **({"reason": gap.reason} if gap.reason else {}),
    }


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
