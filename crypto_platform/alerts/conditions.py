"""What each rule sees now: for which subjects its condition holds, with the evidence.

Every read is bounded. A coin's newest tick is one seek of the `symbol_source_event_time`
index per source, no older than `CRYPTO_CHECK_TICK_MAX_AGE_S` (older, the price is not
known: the rule's episodes stay as they are); a move reads one source's ticks of the
rule's minutes (a day at most) as one group on the server; a gap rule reads the open gaps
of the gap ledger (`gaps`, kept by the gap sensor); a check rule asks `checks`, the latest
evaluation of the check as the Dagster instance holds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo import DESCENDING
from pymongo.collection import Collection

from crypto_platform.alerts.alert import Finding, iso
from crypto_platform.alerts.rules import CheckRule, GapRule, MoveRule, PriceRule, Rule
from crypto_platform.completeness.gaps import from_document
from crypto_platform.completeness.ledger import gap_row
from crypto_platform.ticks import SOURCES

__all__ = ["CheckOutcome", "Conditions", "Observation"]

MINUTE_MS = 60_000


@dataclass(frozen=True)
class CheckOutcome:
    """A check's latest evaluation."""

    passed: bool
    severity: str
    description: str | None
    partition: str | None
    run_id: str
    evaluated_at_ms: int


@dataclass(frozen=True)
class Observation:
    """The subjects whose condition holds; those `unknown` could not be read this time."""

    firing: dict[str, Finding] = field(default_factory=dict)
    unknown: frozenset[str] = frozenset()


class Conditions:
    """The rules' view of the stores at one moment, `now_ms`."""

    def __init__(
        self,
        prices: Collection,
        gaps: Collection,
        checks: Callable[[CheckRule], CheckOutcome | None],
        *,
        symbols: list[str],
        max_age_ms: int,
        now_ms: int,
    ) -> None:
        self.prices = prices
        self.gaps = gaps
        self.checks = checks
        self.symbols = symbols
        self.max_age_ms = max_age_ms
        self.now_ms = now_ms

    def observe(self, rule: Rule) -> Observation:
        match rule:
            case PriceRule():
                return self._price(rule)
            case MoveRule():
                return self._move(rule)
            case GapRule():
                return self._gap(rule)
            case CheckRule():
                return self._check(rule)

    def _newest(self, symbol: str, source: str | None) -> dict[str, Any] | None:
        """The coin's newest tick (of `source`, or of any) not older than `max_age_ms`."""
        since = self.now_ms - self.max_age_ms
        newest = None
        for tag in [source] if source else SOURCES:
            tick = self.prices.find_one(
                {"symbol": symbol, "source": tag, "event_time_ms": {"$gte": since}},
                {"_id": 0, "source": 1, "price": 1, "event_time_ms": 1},
                sort=[("event_time_ms", DESCENDING)],
            )
            if tick is not None and (
                newest is None or tick["event_time_ms"] > newest["event_time_ms"]
            ):
                newest = tick
        return newest

    def _price(self, rule: PriceRule) -> Observation:
        tick = self._newest(rule.symbol, rule.source)
        if tick is None:
            return Observation(unknown=frozenset([rule.symbol]))
        price = float(tick["price"])
        holds = price >= rule.level if rule.direction == "above" else price <= rule.level
        if not holds:
            return Observation()
        finding = Finding(
            rule.symbol,
            rule.symbol,
            f"{rule.symbol} at {price:,.8g} is {rule.direction} {rule.level:,g} "
            f"({tick['source']}, {iso(tick['event_time_ms'])})",
            {
                "source": tick["source"],
                "price": price,
                "event_time": iso(tick["event_time_ms"]),
                "level": rule.level,
                "direction": rule.direction,
            },
        )
        return Observation({rule.symbol: finding})

    def _move(self, rule: MoveRule) -> Observation:
        firing, unknown = {}, set()
        for symbol in [rule.symbol] if rule.symbol else self.symbols:
            tick = self._newest(symbol, rule.source)
            if tick is None:
                unknown.add(symbol)
                continue
            finding = self._moved(rule, symbol, tick)
            if finding is not None:
                firing[symbol] = finding
        return Observation(firing, frozenset(unknown))

    def _moved(self, rule: MoveRule, symbol: str, tick: dict[str, Any]) -> Finding | None:
        """The move from the lowest (highest) price of the rule's minutes up to the newest."""
        until = int(tick["event_time_ms"])
        since = until - int(rule.minutes * MINUTE_MS)
        pipeline: list[dict[str, Any]] = [
            {"$match": {"symbol": symbol, "source": tick["source"],
                        "event_time_ms": {"$gte": since, "$lte": until}}},
            {"$group": {"_id": None, "low": {"$min": "$price"}, "high": {"$max": "$price"},
                        "ticks": {"$sum": 1}}},
        ]  # fmt: skip
        span = next(self.prices.aggregate(pipeline))
        price, low, high = float(tick["price"]), float(span["low"]), float(span["high"])
        moves = []
        if rule.direction != "down":
            moves.append((100 * (price - low) / low, low, "rose"))
        if rule.direction != "up":
            moves.append((100 * (high - price) / high, high, "fell"))
        size, start, verb = max(moves)
        if size < rule.percent:
            return None
        move = size if verb == "rose" else -size
        return Finding(
            symbol,
            symbol,
            f"{symbol} {verb} {size:.2f}% within {rule.minutes:g} min: {start:,.8g} to "
            f"{price:,.8g} ({tick['source']}, {iso(until)})",
            {
                "source": tick["source"],
                "from_price": start,
                "price": price,
                "move_pct": round(move, 4),
                "since": iso(since),
                "event_time": iso(until),
                "ticks": int(span["ticks"]),
                "percent": rule.percent,
                "minutes": rule.minutes,
            },
        )

    def _gap(self, rule: GapRule) -> Observation:
        began_by = self.now_ms - int(rule.minutes * MINUTE_MS)
        query: dict[str, Any] = {"status": "open", "start_ms": {"$lte": began_by}}
        query |= {"symbol": rule.symbol} if rule.symbol else {}
        query |= {"source": rule.source} if rule.source else {}
        firing: dict[str, Finding] = {}
        for gap in sorted(map(from_document, self.gaps.find(query)), key=lambda g: -g.start_ms):
            subject = f"{gap.source}/{gap.symbol}"  # the oldest of a pair's gaps wins
            open_min = (self.now_ms - gap.start_ms) / MINUTE_MS
            firing[subject] = Finding(
                subject,
                gap.symbol,
                f"{gap.symbol} from {gap.source}: no tick since {iso(gap.start_ms)}, a gap "
                f"open {open_min:.0f} min ({gap.expected} ticks missing)",
                {**gap_row(gap), "open_minutes": round(open_min, 1)},
            )
        return Observation(firing)

    def _check(self, rule: CheckRule) -> Observation:
        subject = f"{rule.asset}:{rule.check}"
        outcome = self.checks(rule)
        if outcome is None:
            return Observation(unknown=frozenset([subject]))
        if outcome.passed:
            return Observation()
        where = f" for {outcome.partition}" if outcome.partition else ""
        finding = Finding(
            subject,
            None,
            f"check {subject} failed{where}: {outcome.description or outcome.severity}",
            {
                "asset": rule.asset,
                "check": rule.check,
                "passed": False,
                "severity": outcome.severity,
                "description": outcome.description,
                "partition": outcome.partition,
                "run_id": outcome.run_id,
                "evaluated_at": iso(outcome.evaluated_at_ms),
            },
        )
        return Observation({subject: finding})
