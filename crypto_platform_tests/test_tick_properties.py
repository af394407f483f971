"""Any message at all: refused with a reason, or a tick every store downstream can hold.

No server: the conversions are the real ones (BSON, the Spark source's Arrow batch, the
Cassandra driver's serializers for the tables' column types), run on generated extremes.
"""

from __future__ import annotations

import math

from bson import encode
from cassandra.cqltypes import DateType, DoubleType, LongType, UTF8Type
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.consumer.fetcher import ConsumerRecord

from crypto_platform.spark.kafka_source import _record_batch
from crypto_platform.ticks import InvalidTick, Tick
from crypto_platform_tests.tick_strategies import NOW_MS, message_values

PROTOCOL = 3
COLUMN_TYPES = {
    "price": DoubleType, "event_time_ms": LongType, "ingest_time_ms": LongType,
    "market_cap": DoubleType, "volume_24h": DoubleType, "change_24h_pct": DoubleType,
    "number_of_markets": LongType, "total_supply": DoubleType, "name": UTF8Type,
    "uuid": UTF8Type, "symbol": UTF8Type, "source": UTF8Type, "quote": UTF8Type,
}  # fmt: skip
record_timestamps = st.one_of(
    st.integers(min_value=NOW_MS - 60_000, max_value=NOW_MS + 60_000),
    st.sampled_from([-1, 0, 2**63 - 1]),
)


def record(value: bytes, timestamp: int) -> ConsumerRecord:
    return ConsumerRecord("crypto.prices", 0, -1, 7, timestamp, 0, b"BTC", value, [], None,
                          3, len(value), 0)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(value=message_values, written_ms=record_timestamps)
def test_a_message_is_refused_with_a_reason_or_fits_every_store(
    value: bytes, written_ms: int
) -> None:
    try:
        tick = Tick.from_json(value, written_ms=written_ms)
    except InvalidTick as error:
        assert error.reason and "\n" not in error.reason
        return
    encode(tick.to_document())  # MongoDB
    for name, cql_type in COLUMN_TYPES.items():  # Cassandra
        field = getattr(tick, name)
        if field is not None:
            cql_type.serialize(field, PROTOCOL)
    DateType.serialize(tick.event_time_ms, PROTOCOL)
    assert math.isfinite(tick.price) and math.isfinite(1 / tick.price)
    batch = _record_batch([record(value, written_ms)])  # Spark's Arrow batch
    assert batch.column("invalid_reason")[0].as_py() is None
    assert batch.column("event_time_ms")[0].as_py() == tick.event_time_ms


@settings(max_examples=100, deadline=None)
@given(values=st.lists(message_values, min_size=1, max_size=20), written_ms=record_timestamps)
def test_spark_reads_a_batch_of_any_messages_with_the_sinks_verdicts(
    values: list[bytes], written_ms: int
) -> None:
    batch = _record_batch([record(value, written_ms) for value in values])

    for value, reason in zip(values, batch.column("invalid_reason").to_pylist(), strict=True):
        try:
            Tick.from_json(value, written_ms=written_ms)
            verdict = None
        except InvalidTick as error:
            verdict = error.reason
        assert reason == verdict
