"""Whether a soak run's figures stayed flat: a judgement over recorded per-minute figures alone.

Each criterion compares a baseline period with a final one: the first five minutes after
a warm-up against the last five, or, in a run too short for that, the two halves of what
follows the warm-up (and says so). The warm-up is the time the state takes to fill (see
`state_fill_s`), at least WARMUP_MINUTES: until then state rows, and the memory and batch
time that follow them, grow by design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from crypto_platform.bench.fixtures import median
from crypto_platform.stack.cassandra_server import CassandraServer
from crypto_platform.stack.kafka_server import KafkaServer
from crypto_platform.stack.mongo_server import MongoServer

WARMUP_MINUTES = 2
SPAN_MINUTES = 5
BATCH_P50_TOLERANCE = 0.25  # the final p50 within 25 % of the baseline's, either way
STATE_ROWS_GROWTH = 1.10  # the final period's most rows over the baseline period's
MEMORY_GROWTH = 1.10  # a process's final mean RSS over its baseline mean
# Recorded but not judged: the local stand-ins for Kafka, MongoDB and Cassandra hold
# more data the longer the run goes; they are not part of the pipeline under test.
UNJUDGED = frozenset(server.name for server in (KafkaServer, MongoServer, CassandraServer))


@dataclass
class Minute:
    """What one minute of a soak recorded (minutes counted from 1)."""

    minute: int
    batch_s: list[float] = field(default_factory=list)  # each batch that ended in it
    state_rows: int | None = None  # the most seen in it
    rss_mib: dict[str, float] = field(default_factory=dict)  # mean per process
    sink_lag: int | None = None  # the most seen in it
    spark_lag: int | None = None  # the most seen in it
    produced: int | None = None  # ticks the topic gained in it


@dataclass(frozen=True)
class Periods:
    """Indexes of the baseline and final minutes, and how they were chosen, in words."""

    baseline: range
    final: range
    how: str


def state_fill_s(window_s: int, watermark_s: int) -> int:
    """Event time for which Spark keeps a row of state, at the most, under this watermark.

    A window's row stays until the watermark (newest event time minus the delay) passes
    the window's end: window + watermark after the window starts. The identities of a
    slide's ticks, kept to drop duplicates, stay until it passes the slide's end.
    At a steady rate the state grows for this long, then evictions keep pace with new rows.
    """
    return window_s + watermark_s


def periods(count: int, skip: int) -> Periods | None:
    """Baseline and final periods of `count` minutes after the first `skip` (None: too few)."""
    after = count - skip
    span = SPAN_MINUTES if after >= 2 * SPAN_MINUTES else max(0, after) // 2
    if span == 0:
        return None
    baseline, final = range(skip, skip + span), range(count - span, count)
    how = (
        f"minutes {_span(baseline)} (the first five after the first {skip}) against "
        f"{_span(final)} (the last five)"
        if span == SPAN_MINUTES
        else f"halves: minutes {_span(baseline)} against {_span(final)} (the run is shorter "
        f"than {skip} + {2 * SPAN_MINUTES} minutes)"
    )
    return Periods(baseline, final, how)


def _span(indexes: range) -> str:
    first, last = indexes[0] + 1, indexes[-1] + 1
    return str(first) if first == last else f"{first}-{last}"


def _ratio(final: float, baseline: float) -> float:
    return round(final / baseline, 3) if baseline else math.inf


def judge(minutes: list[Minute], *, state_fill_minutes: int) -> dict[str, Any]:
    """Each criterion's figures and verdict (True, False, or None: not judged), and overall."""
    wanted = max(WARMUP_MINUTES, state_fill_minutes)
    warmup = min(wanted, max(0, len(minutes) - 2))
    chosen = periods(len(minutes), warmup)
    if warmup < wanted and chosen is not None:
        chosen = Periods(chosen.baseline, chosen.final, f"{chosen.how}; warm-up cut to {warmup}")
    criteria = {
        "batch_p50": _batch_p50(minutes, chosen),
        "state_rows": _state_rows(minutes, chosen if warmup == wanted else None, wanted),
        "memory": _memory(minutes, chosen),
    }
    judged = [c["passed"] for c in criteria.values() if c["passed"] is not None]
    return {**criteria, "passed": bool(judged) and all(judged)}


def _batch_p50(minutes: list[Minute], chosen: Periods | None) -> dict[str, Any]:
    verdict: dict[str, Any] = {
        "criterion": f"p50 of the batch time within {BATCH_P50_TOLERANCE:.0%} of the baseline's",
        "compared": chosen.how if chosen else "not judged: under 2 minutes",
        "passed": None,
    }
    if chosen is None:
        return verdict
    first = [s for i in chosen.baseline for s in minutes[i].batch_s]
    last = [s for i in chosen.final for s in minutes[i].batch_s]
    if not first or not last:
        return {**verdict, "passed": False, "note": "no batch ended in one of the periods"}
    baseline, final = median(first), median(last)
    ratio = _ratio(final, baseline)
    passed = abs(ratio - 1) <= BATCH_P50_TOLERANCE
    return {**verdict, "baseline": baseline, "final": final, "ratio": ratio, "passed": passed}


def _state_rows(minutes: list[Minute], chosen: Periods | None, fill_minutes: int) -> dict[str, Any]:
    verdict: dict[str, Any] = {
        "criterion": f"the final period's most state rows at most {STATE_ROWS_GROWTH}x the "
        f"baseline's, once the state has filled (minute {fill_minutes})",
        "compared": chosen.how
        if chosen
        else f"not judged: the state fills until minute {fill_minutes}, so the run must "
        f"last at least {fill_minutes + 2} minutes",
        "passed": None,
    }
    if chosen is None:
        return verdict
    first = [m.state_rows for i in chosen.baseline if (m := minutes[i]).state_rows is not None]
    last = [m.state_rows for i in chosen.final if (m := minutes[i]).state_rows is not None]
    if not first or not last:
        return {**verdict, "passed": False, "note": "no state rows seen in one of the periods"}
    ratio = _ratio(max(last), max(first))
    passed = ratio <= STATE_ROWS_GROWTH
    return {**verdict, "baseline": max(first), "final": max(last), "ratio": ratio, "passed": passed}


def _memory(minutes: list[Minute], chosen: Periods | None) -> dict[str, Any]:
    verdict: dict[str, Any] = {
        "criterion": f"each process's mean RSS grows at most {MEMORY_GROWTH - 1:.0%}",
        "compared": chosen.how if chosen else "not judged: under 2 minutes",
        "passed": None,
        "processes": {},
    }
    if chosen is None:
        return verdict
    # The pipeline's processes first, then the local servers.
    names = sorted({n for m in minutes for n in m.rss_mib}, key=lambda n: (n in UNJUDGED, n))
    for name in names:
        first = [minutes[i].rss_mib[name] for i in chosen.baseline if name in minutes[i].rss_mib]
        last = [minutes[i].rss_mib[name] for i in chosen.final if name in minutes[i].rss_mib]
        judged = name not in UNJUDGED
        if not first or not last:
            verdict["processes"][name] = {"judged": judged, "passed": False if judged else None}
            continue
        baseline, final = round(sum(first) / len(first), 1), round(sum(last) / len(last), 1)
        ratio = _ratio(final, baseline)
        verdict["processes"][name] = {
            "baseline_mib": baseline,
            "final_mib": final,
            "ratio": ratio,
            "judged": judged,
            "passed": ratio <= MEMORY_GROWTH if judged else None,
        }
    outcomes = [p["passed"] for p in verdict["processes"].values() if p["judged"]]
    verdict["passed"] = bool(outcomes) and all(outcomes)
    return verdict
