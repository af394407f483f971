"""Tick by tick: what the broker acknowledged against the topic, MongoDB and Cassandra.

The ground truth is the producers' own ledgers of acknowledged ticks (`ack_ledger`),
written as they go: a tick the broker acknowledged and then lost (the local broker does on
a SIGTERM restart) is in a ledger and not in the topic read after the run, "lost by the
broker". A tick is known by its identity (source, symbol, event time); it is lost by us
from a store when the topic has it and the store does not, duplicated when the store holds
it more than once. The topic may hold a tick twice after the producer resent it ("resent").
A SIGKILLed producer loses its unwritten ledger lines, so ticks in the topic count as
acknowledged too.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from crypto_platform.chaos.recompute import TickKey
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra, cassandra_queries, mongo
from crypto_platform.streaming.ack_ledger import read_ack_ledger
from crypto_platform.streaming.topics import read_to_end
from crypto_platform.ticks import InvalidTick, Tick

log = logging.getLogger(__name__)

EXAMPLES = 5
READ_TIMEOUT_S = 600.0  # the whole topic of a long run, on a busy machine


@dataclass
class Ledger:
    """Every distinct tick in the topic with its ingest time, and how often each was sent."""

    ingest_ms: dict[TickKey, int] = field(default_factory=dict)
    messages: int = 0
    invalid: int = 0
    resent: Counter[TickKey] = field(default_factory=Counter)


def read_ledgers(paths: Iterable[Path]) -> dict[TickKey, int]:
    """The union of the producers' ledgers: each acknowledged tick and its ingest time."""
    acknowledged: dict[TickKey, int] = {}
    for path in paths:
        with path.open(encoding="utf-8") as lines:
            acknowledged.update(read_ack_ledger(lines))
    return acknowledged


def read_topic(settings: Settings) -> Ledger:
    """Read the tick topic from its beginning to its end offsets."""
    records = read_to_end(
        settings, settings.kafka_topic, timeout_s=READ_TIMEOUT_S, client_id="crypto-chaos-ledger"
    )
    return ledger_of(record.value for record in records)


def ledger_of(values: Iterable[bytes | None]) -> Ledger:
    """The ledger of a topic's message values, in the order they were read."""
    ledger = Ledger()
    for value in values:
        ledger.messages += 1
        try:
            tick = Tick.from_json(value)
        except InvalidTick:
            ledger.invalid += 1
            continue
        key = (tick.source, tick.symbol, tick.event_time_ms)
        if key in ledger.ingest_ms:
            ledger.resent[key] += 1
        ledger.ingest_ms[key] = tick.ingest_time_ms
    return ledger


def mongo_copies(settings: Settings) -> Counter[TickKey]:
    """How many documents MongoDB holds of each tick (by its fields, not only its `_id`)."""
    copies: Counter[TickKey] = Counter()
    with mongo.connect(settings) as client:
        fields = {"source": 1, "symbol": 1, "event_time_ms": 1}
        for doc in mongo.prices_collection(client, settings).find({}, fields).batch_size(10_000):
            copies[(doc["source"], doc["symbol"], doc["event_time_ms"])] += 1
    return copies


def _days(first_ms: int, last_ms: int) -> list[str]:
    return cassandra_queries.days_between(first_ms, last_ms + 1)


def cassandra_copies(settings: Settings, keys: Iterable[TickKey]) -> Counter[TickKey]:
    """How many prices_by_symbol rows hold each tick, over every partition `keys` touch."""
    copies: Counter[TickKey] = Counter()
    keys = list(keys)
    times = [key[2] for key in keys] or [0]
    cluster, session = cassandra.connect(settings)
    try:
        for symbol in sorted({key[1] for key in keys}):
            for day in _days(min(times), max(times)):
                for source, event_ms in cassandra_queries.price_keys(
                    session, settings.cassandra_keyspace, symbol, day
                ):
                    copies[(source, symbol, event_ms)] += 1
    finally:
        cluster.shutdown()
    return copies


@dataclass(frozen=True)
class BrokerCheck:
    """The producers' ledgers against the topic read after the run."""

    acknowledged: dict[TickKey, int]  # ledgers and topic together: tick -> ingest ms
    lost: set[TickKey]  # in a ledger, not in the topic: lost by the broker
    not_in_ledger: int  # in the topic only: a SIGKILLed producer's unwritten lines

    def summary(self) -> dict[str, object]:
        return {
            "acknowledged": len(self.acknowledged),
            "lost_by_broker": len(self.lost),
            "not_in_ledger": self.not_in_ledger,
            "lost_examples": [":".join(map(str, key)) for key in sorted(self.lost)[:EXAMPLES]],
        }


def check_broker(ledgers: dict[TickKey, int], topic: Ledger) -> BrokerCheck:
    return BrokerCheck(
        acknowledged={**ledgers, **topic.ingest_ms},
        lost={key for key in ledgers if key not in topic.ingest_ms},
        not_in_ledger=sum(1 for key in topic.ingest_ms if key not in ledgers),
    )


@dataclass(frozen=True)
class StoreCheck:
    """One store against the topic and the ledgers."""

    lost: set[TickKey]
    duplicated: dict[TickKey, int]  # tick -> copies beyond the first
    unknown: int  # stored ticks no producer had acknowledged

    def summary(self) -> dict[str, object]:
        return {
            "lost": len(self.lost),
            "duplicated": sum(self.duplicated.values()),
            "not_acknowledged": self.unknown,
            "lost_examples": [":".join(map(str, key)) for key in sorted(self.lost)[:EXAMPLES]],
        }


def check_store(
    topic: Ledger, acknowledged: Collection[TickKey], copies: Counter[TickKey]
) -> StoreCheck:
    """Lost by us: in the topic, not in the store."""
    return StoreCheck(
        lost={key for key in topic.ingest_ms if copies[key] == 0},
        duplicated={key: n - 1 for key, n in copies.items() if n > 1},
        unknown=sum(1 for key in copies if key not in acknowledged),
    )
