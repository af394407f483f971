"""`crypto-platform bench --scale`: every report and check timed at two sizes of history.

History (`scale_history`) is written straight into MongoDB and Cassandra, newest first:
the small size ending now, then older history up to the large size or until the loads
have taken `LOAD_BUDGET_S` in all (the large size is then what was loaded, and says so).
Before each round the history is topped up to the present, so the recent hours every
check reads hold the same ticks at both sizes. Each report and each check of `CHECKS`
runs once to warm up (clients open, modules import), then `REPEATS` times; its time at a
size is the median. A cost flat in history is a time that does not grow with the size.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from crypto_platform.bench.fixtures import drop_topics, fresh, measured_stack
from crypto_platform.bench.scale_history import STEP_MS, Loader
from crypto_platform.completeness.hours import hour_completeness
from crypto_platform.reports.checks import CHECKS, Outcome
from crypto_platform.reports.statistics import Period, statistics_report
from crypto_platform.reports.storage import storage_report
from crypto_platform.reports.stores import Stores, open_stores
from crypto_platform.reports.throughput import throughput_report
from crypto_platform.settings import Settings
from crypto_platform.ticks import now_ms

log = logging.getLogger(__name__)

LOAD_BUDGET_S = 15 * 60
REPEATS = 3
PROGRESS_S = 60.0


@dataclass(frozen=True)
class Sizes:
    """The two history sizes, in ticks."""

    small: int
    large: int


FULL = Sizes(1_000_000, 10_000_000)
QUICK = Sizes(100_000, 1_000_000)


@dataclass(frozen=True)
class Timed:
    """One report or check as the bench runs it: a name and what to call."""

    name: str
    run: Callable[[Stores], Any]


def timed_items() -> list[Timed]:
    """Every check of `CHECKS`, the three reports and the hourly completeness.

    The hourly ones (statistics, completeness and its check) over the last closed hour.
    """
    checks = [Timed(f"check {'/'.join(c.asset)} {c.name}", c.run) for c in CHECKS]
    return [
        *checks,
        Timed("report storage", storage_report),
        Timed("report throughput", throughput_report),
        Timed("report statistics", lambda s: statistics_report(s, Period.last_closed_hour())),
        Timed(
            "hourly completeness",
            lambda s: hour_completeness(s.settings, Period.last_closed_hour().start_ms),
        ),
    ]


def time_round(
    settings: Settings,
    items: list[Timed],
    repeats: int = REPEATS,
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Each item's median seconds over `repeats` runs after a warm-up; checks' verdicts."""
    seconds: dict[str, float] = {}
    passed: dict[str, bool] = {}
    with open_stores(settings) as stores:
        for item in items:
            outcome = item.run(stores)
            if isinstance(outcome, Outcome):
                passed[item.name] = outcome.passed
            runs = []
            for _ in range(repeats):
                started = time.perf_counter()
                item.run(stores)
                runs.append(time.perf_counter() - started)
            seconds[item.name] = round(statistics.median(runs), 4)
            say(f"  {item.name}: {seconds[item.name]} s")
    return {"seconds": seconds, "checks_passed": passed}


def run_scale(
    settings: Settings,
    *,
    quick: bool,
    own_stack: bool,
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Load the small history, time every item, grow it to the large, time them again.

    On a running stack its database and keyspace (`bench_scale_*`) stay, as every bench
    part's do; its topics go.
    """
    sizes = QUICK if quick else FULL
    with measured_stack(settings, own_stack=own_stack, say=say) as measured:
        scale = fresh(measured, "scale")
        loader = Loader(scale, _now_on_grid())
        try:
            return {"sizes": list(_rounds(scale, loader, sizes, say)),
                    "wanted": [sizes.small, sizes.large]}  # fmt: skip
        finally:
            loader.close()
            drop_topics(measured)


def _now_on_grid() -> int:
    return now_ms() // STEP_MS * STEP_MS


def _until(deadline: float, loader: Loader, say: Callable[[str], None]) -> Callable[[], bool]:
    """Whether to load another chunk (before the deadline); says how far it got each minute."""
    said = [time.monotonic()]

    def keep_going() -> bool:
        now = time.monotonic()
        if now - said[0] >= PROGRESS_S:
            said[0] = now
            say(f"  {loader.span.ticks:,} ticks stored")
        return now < deadline

    return keep_going


def _rounds(
    settings: Settings, loader: Loader, sizes: Sizes, say: Callable[[str], None]
) -> Iterator[dict[str, Any]]:
    items = timed_items()
    spent = 0.0
    for wanted in (sizes.small, sizes.large):
        started = time.monotonic()
        remaining = LOAD_BUDGET_S - spent
        say(f"loading history up to {wanted:,} ticks ({remaining:.0f} s of the budget left)")
        loader.back(wanted - loader.span.ticks, _until(started + remaining, loader, say))
        loader.forward(_now_on_grid())
        spent += time.monotonic() - started
        ticks = loader.span.ticks
        say(f"{ticks:,} ticks stored ({spent:.0f} s of loading so far); timing every item")
        measured = time_round(settings, items, say=say)
        say(f"slowest at {ticks:,}: {max(measured['seconds'].items(), key=lambda kv: kv[1])}")
        yield {
            "ticks": ticks,
            "span_days": round(ticks * STEP_MS / 86_400_000, 1),
            "load_s_total": round(spent, 1),
            **measured,
        }
