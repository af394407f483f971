"""Every data check of the platform, as plain functions over the stores.

Each returns an `Outcome`; Dagster wraps them as asset checks (defs/*/checks.py) and
`crypto-platform check` runs them all. `CHECKS` is the one list of them: name, asset
and severity.

Each reads a bounded slice, whatever the history: a closed hour, or the last `RECENT_S`
(the checks run every 15 minutes, so every tick is looked at several times), through an
index or by partition key; whole-store figures are the servers' own (MongoDB's estimated
count, Kafka's offsets).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from crypto_platform.completeness.gaps import from_document
from crypto_platform.reports.statistics import Period
from crypto_platform.reports.stores import Stores
from crypto_platform.reports.throughput import committed_offsets, end_offsets, messages_since
from crypto_platform.storage import cassandra_queries, mongo_queries
from crypto_platform.storage.mongo import DATA_LOSS_COLLECTION, GAPS_COLLECTION

Severity = Literal["ERROR", "WARN"]
# What changed since the last runs: ticks ingested, windows started, in the last two hours.
RECENT_S = 2 * 3600
# A closed hour is compared once Spark has had time to write it.
SETTLE_S = 300
# A range lost to retention fails `retention_loss` for a day after it was found.
LOSS_WINDOW_S = 86_400
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Outcome:
    """A check's verdict, a one-line reason, and figures for the UI."""

    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """A check as Dagster and the CLI see it: which asset, how bad a failure is."""

    name: str
    asset: tuple[str, ...]
    severity: Severity
    run: Callable[[Stores], Outcome]
    description: str


def _coins(stores: Stores) -> list[str]:
    keyspace = stores.settings.cassandra_keyspace
    return sorted(
        set(stores.settings.symbols) | set(cassandra_queries.symbols(stores.cassandra(), keyspace))
    )


def tick_freshness(stores: Stores) -> Outcome:
    """The newest tick of every configured coin is younger than CRYPTO_CHECK_TICK_MAX_AGE_S.

    Reads each coin's ticks of that age only: a coin without one is stale (its age None).
    """
    limit = stores.settings.check_tick_max_age_s
    now_ms = time.time() * 1000
    coins = sorted(stores.settings.symbols)
    newest = mongo_queries.newest_event_times(stores.prices, coins, int(now_ms - limit * 1000))
    ages = {
        coin: round((now_ms - newest[coin]) / 1000, 1) if coin in newest else None for coin in coins
    }
    stale = [coin for coin in stores.settings.symbols if ages[coin] is None]
    return Outcome(
        not stale,
        f"stale or missing: {', '.join(stale)}" if stale else f"every coin within {limit:.0f}s",
        {
            "max_age_s": limit,
            "stale": ", ".join(stale),
            **{f"age_s_{c}": a for c, a in ages.items()},
        },
    )


def mongo_positive_prices(stores: Stores) -> Outcome:
    """No tick ingested in the last 2 hours has a price <= 0, NaN, infinite or not a number."""
    since_ms = int((time.time() - RECENT_S) * 1000)
    count, examples = mongo_queries.bad_prices(stores.prices, since_ms)
    return Outcome(
        count == 0,
        f"{count} ticks with a non-positive or non-finite price" if count else "all prices > 0",
        {
            "bad_prices": count,
            "examples": ", ".join(f"{e['_id']}={e.get('price')}" for e in examples),
            "window_s": RECENT_S,
        },
    )


def _bad(price: Any) -> bool:
    return not isinstance(price, float | int) or not math.isfinite(price) or price <= 0


def cassandra_positive_prices(stores: Stores) -> Outcome:
    """No price <= 0 or non-finite in latest_prices, nor in prices_by_symbol's last 2 hours."""
    session, keyspace = stores.cassandra(), stores.settings.cassandra_keyspace
    now_ms = int(time.time() * 1000)
    bad = [
        f"latest {row['symbol']}={row['price']}"
        for row in cassandra_queries.latest_prices(session, keyspace)
        if _bad(row["price"])
    ]
    scanned = 0
    for coin in _coins(stores):
        for row in cassandra_queries.prices(
            session, keyspace, coin, now_ms - RECENT_S * 1000, now_ms + 60_000
        ):
            scanned += 1
            if _bad(row["price"]):
                bad.append(f"{coin}@{row['event_time_ms']}={row['price']}")
    return Outcome(
        not bad,
        f"{len(bad)} non-positive or non-finite prices" if bad else "all prices > 0",
        {"bad_prices": len(bad), "rows_scanned": scanned, "examples": ", ".join(bad[:5])},
    )


def kafka_mongo_completeness(stores: Stores) -> Outcome:
    """Every committed tick is in MongoDB: committed offsets - dead letters <= documents.

    Committed = end offsets - lag. Read in this order (commits, dead letters, documents),
    a tick counted as committed was stored before the count, so a shortfall is a loss;
    a surplus is ticks stored but not committed yet (in flight). Dead letters are counted
    by the DLQ's end offsets (every dead letter ever written, whatever retention removed
    since); documents by the server's own count (MongoDB keeps it, no scan). With a
    MongoDB TTL, expired documents make the sum meaningless: not checked; nor when the
    server does not give its count in time (the local SecantusDB counts by walking).
    """
    settings, kafka = stores.settings, stores.kafka()
    if settings.mongo_ttl_days is not None:
        return Outcome(
            True,
            "not checked: CRYPTO_MONGO_TTL_DAYS expires documents",
            {"mongo_ttl_days": settings.mongo_ttl_days},
        )
    committed = sum(
        committed_offsets(kafka, settings.kafka_consumer_group, settings.kafka_topic).values()
    )
    dead = sum(end_offsets(kafka, settings.kafka_dlq_topic).values())
    documents = mongo_queries.estimated_documents(stores.prices)
    if documents is None:
        return Outcome(
            True,
            f"not checked: MongoDB gave no document count within "
            f"{mongo_queries.STATS_BUDGET_MS} ms",
            {"committed_offsets": committed, "dead_letters": dead},
        )
    expected = committed - dead
    return Outcome(
        documents >= expected,
        f"{expected - documents} committed ticks missing from MongoDB"
        if documents < expected
        else "every committed tick is stored",
        {"committed_offsets": committed, "dead_letters": dead, "expected_documents": expected,
         "documents": documents, "in_flight": documents - expected},
    )  # fmt: skip


def mongo_cassandra_agree(stores: Stores, period: Period | None = None) -> Outcome:
    """For a closed hour, MongoDB and Cassandra hold the same number of ticks per coin."""
    period = period or Period.last_closed_hour(_now_minus(SETTLE_S))
    in_mongo = mongo_queries.count_by_symbol(stores.prices, period.start_ms, period.end_ms)
    session, keyspace = stores.cassandra(), stores.settings.cassandra_keyspace
    coins = sorted(set(in_mongo) | set(_coins(stores)))
    in_cassandra = {
        coin: cassandra_queries.count_prices(
            session, keyspace, coin, period.start_ms, period.end_ms
        )
        for coin in coins
    }
    differ = [coin for coin in coins if in_mongo.get(coin, 0) != in_cassandra[coin]]
    return Outcome(
        not differ,
        f"counts differ for {', '.join(differ)} in {period.start:%Y-%m-%d %H}:00"
        if differ
        else f"same counts in {period.start:%Y-%m-%d %H}:00",
        {"hour": period.start.isoformat(),
         **{f"mongodb_{c}": in_mongo.get(c, 0) for c in coins},
         **{f"cassandra_{c}": in_cassandra[c] for c in coins}},
    )  # fmt: skip


def _now_minus(seconds: float) -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


def _le(a: float, b: float) -> bool:
    return a <= b + TOLERANCE * max(abs(a), abs(b))


def _ordered(row: dict[str, Any]) -> bool:
    chain = [row["min_price"], row["harmonic_mean"], row["geometric_mean"],
             row["arithmetic_mean"], row["max_price"]]  # fmt: skip
    return (
        all(value is not None and math.isfinite(value) for value in chain)
        and all(_le(a, b) for a, b in itertools.pairwise(chain))
        and (row["tick_count"] or 0) > 0
    )


def _recent_aggregates(stores: Stores) -> Iterator[tuple[str, dict[str, Any]]]:
    """latest_aggregates, and the aggregates_by_symbol partitions of the last 2 hours' days.

    The partitions are those of every series latest_aggregates knows (coin, source, window
    length), so each read names its partition.
    """
    session, keyspace = stores.cassandra(), stores.settings.cassandra_keyspace
    latest = cassandra_queries.latest_aggregates(session, keyspace)
    yield from (("latest_aggregates", row) for row in latest)
    now_ms = int(time.time() * 1000)
    days = cassandra_queries.days_between(now_ms - RECENT_S * 1000, now_ms + 1)
    for series in sorted({(r["symbol"], r["source"], r["window_seconds"]) for r in latest}):
        for day in days:
            for row in cassandra_queries.aggregate_windows(session, keyspace, *series, day):
                yield "aggregates_by_symbol", row


def aggregates_ordered(stores: Stores) -> Outcome:
    """Every recent aggregate row: min <= HM <= GM <= AM <= max, and a positive tick count.

    Recent: every latest_aggregates row, and the aggregates_by_symbol rows of the UTC days
    of the last 2 hours.
    """
    bad, rows = [], 0
    for table, row in _recent_aggregates(stores):
        rows += 1
        if not _ordered(row):
            bad.append(
                f"{table} {row['symbol']} ({row['source']}) {row['window_start']:%Y-%m-%d %H:%M}"
            )
    return Outcome(
        not bad,
        f"{len(bad)} aggregate rows out of order" if bad else f"{rows} rows in order",
        {"rows": rows, "bad_rows": len(bad), "examples": "; ".join(bad[:5])},
    )


def dlq_growth(stores: Stores) -> Outcome:
    """Fewer than CRYPTO_CHECK_DLQ_MAX_PER_HOUR dead letters in the last hour."""
    settings = stores.settings
    last_hour = messages_since(
        stores.kafka(), settings.kafka_dlq_topic, int((time.time() - 3600) * 1000)
    )
    limit = settings.check_dlq_max_per_hour
    return Outcome(
        last_hour < limit,
        f"{last_hour} dead letters in the last hour (limit {limit})",
        {"dead_letters_last_hour": last_hour, "limit_per_hour": limit},
    )


def retention_loss(stores: Stores) -> Outcome:
    """No Kafka offsets removed by retention before the sink read them, in the last day."""
    since_ms = int((time.time() - LOSS_WINDOW_S) * 1000)
    losses = list(
        stores.prices.database[DATA_LOSS_COLLECTION].find(
            {"detected_at_ms": {"$gte": since_ms}}, {"_id": 0}
        )
    )
    ranges = [
        f"{d['topic']}[{d['partition']}] {d['first_offset']}..{d['last_offset']}" for d in losses
    ]
    lost = sum(d["count"] for d in losses)
    return Outcome(
        not ranges,
        f"{lost} offsets removed by retention before the sink read them: {'; '.join(ranges[:5])}"
        if ranges
        else "no offsets lost to retention in the last day",
        {"lost_offsets": lost, "ranges": "; ".join(ranges[:20])},
    )


def gaps_repaired(stores: Stores) -> Outcome:
    """No gap is still open CRYPTO_CHECK_GAP_MAX_AGE_S after it began (the ledger's view)."""
    limit_s = stores.settings.check_gap_max_age_s
    oldest_ms = int((time.time() - limit_s) * 1000)
    ledger = stores.prices.database[GAPS_COLLECTION]
    stale = [
        from_document(d) for d in ledger.find({"status": "open", "start_ms": {"$lt": oldest_ms}})
    ]
    names = [f"{g.source}/{g.symbol} since {_iso(g.start_ms)}" for g in stale]
    return Outcome(
        not stale,
        f"{len(stale)} gaps open for over {limit_s:.0f}s: {'; '.join(names[:5])}"
        if stale
        else f"no gap open for over {limit_s:.0f}s",
        {"stale_gaps": len(stale), "gaps": "; ".join(names[:20]), "max_age_s": limit_s},
    )


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


MONGO = ("mongo", "prices")
PRICES_BY_SYMBOL = ("cassandra", "prices_by_symbol")
AGGREGATES = ("cassandra", "aggregates_by_symbol")
DLQ = ("kafka", "crypto_prices_dlq")

CHECKS: tuple[Check, ...] = (
    Check("tick_freshness", MONGO, "ERROR", tick_freshness, tick_freshness.__doc__ or ""),
    Check("positive_prices", MONGO, "ERROR", mongo_positive_prices,
          mongo_positive_prices.__doc__ or ""),
    Check("kafka_completeness", MONGO, "ERROR", kafka_mongo_completeness,
          "Every committed Kafka offset (minus dead letters) is a MongoDB document."),
    Check("positive_prices", PRICES_BY_SYMBOL, "ERROR", cassandra_positive_prices,
          cassandra_positive_prices.__doc__ or ""),
    Check("agrees_with_mongodb", PRICES_BY_SYMBOL, "ERROR", mongo_cassandra_agree,
          mongo_cassandra_agree.__doc__ or ""),
    Check("means_ordered", AGGREGATES, "ERROR", aggregates_ordered,
          aggregates_ordered.__doc__ or ""),
    Check("retention_loss", MONGO, "ERROR", retention_loss,
          retention_loss.__doc__ or ""),
    Check("gaps_repaired", MONGO, "ERROR", gaps_repaired, gaps_repaired.__doc__ or ""),
    Check("dlq_growth", DLQ, "WARN", dlq_growth, dlq_growth.__doc__ or ""),
)  # fmt: skip


def run_checks(stores: Stores, checks: tuple[Check, ...] = CHECKS) -> list[dict[str, Any]]:
    """Run each check; the result rows `crypto-platform check` prints."""
    results = []
    for check in checks:
        outcome = check.run(stores)
        results.append(
            {"asset": "/".join(check.asset), "check": check.name, "severity": check.severity,
             "passed": outcome.passed, "description": outcome.description,
             "metadata": outcome.metadata}
        )  # fmt: skip
    return results
