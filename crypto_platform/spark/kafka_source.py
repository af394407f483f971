"""A Kafka streaming source for PySpark, written with the Python Data Source API.

No package here ships spark-sql-kafka, so this reads Kafka with kafka-python: one Spark
input partition per Kafka partition (or more with `minPartitions`, as in Spark's own
Kafka source: large offset ranges are cut so that there are at least that many read
tasks), offsets checkpointed by Spark as JSON (`{"0": 1200, "1": 980}`),
`startingOffsets` earliest or latest, `maxOffsetsPerTrigger`, `Trigger.AvailableNow`,
`failOnDataLoss` (default true: offsets removed by retention before they were read fail
the query, as with Spark's own Kafka source; false: skipped, counted and logged), and
every `kafka.*` option handed to the consumer (dots become underscores:
`kafka.bootstrap.servers` -> `bootstrap_servers`). Executors read with their own
consumers, kept from task to task in each Python worker, so it runs unchanged on a cluster.

kafka-python's `api_version` is left to the broker's answer: kafka-python 3.0 still asks
each new connection for the broker's API versions when it is set, and a consumer built
with it skips the eager bootstrap, so its first fetch waits a metadata retry backoff
(about 100 ms here, against about 14 ms for a whole task without it).
"""

from __future__ import annotations

import atexit
import heapq
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

log = logging.getLogger(__name__)

SOURCE_NAME = "crypto_kafka"
RECORD_COLUMNS = (
    "topic string, partition int, offset long, timestamp timestamp, key binary, value binary"
)
# Each record parsed by the one tick definition (`Tick.from_json`): typed columns, null
# where the record is not a valid tick, and `invalid_reason` (null for a valid tick).
TICK_COLUMNS = (
    "source string, symbol string, price double, quote string, event_time_ms long, "
    "ingest_time_ms long, name string, market_cap double, volume_24h double, "
    "change_24h_pct double, number_of_markets long, total_supply double, uuid string, "
    "invalid_reason string"
)
SCHEMA = f"{RECORD_COLUMNS}, {TICK_COLUMNS}"
TICK_FIELDS = tuple(column.split()[0] for column in TICK_COLUMNS.split(", "))[:-1]
Offsets = dict[str, int]
ARROW_BATCH_ROWS = 10_000


# The latest moment a timestamp column holds (9999-12-31T23:59:59.999Z). A record's own
# timestamp is whatever its producer set: one beyond this reads as null, never failing the
# batch (Arrow and Spark refuse it as out of bounds).
LATEST_TIMESTAMP_MS = 253_402_300_799_999


def _parse(record: Any) -> tuple[dict[str, Any], str | None]:
    """A record's tick fields and None, or no fields and why it is not a tick."""
    from crypto_platform.ticks import InvalidTick, Tick

    try:
        return Tick.from_json(record.value, written_ms=record.timestamp).model_dump(), None
    except InvalidTick as error:
        return {}, error.reason


def _timestamp_us(ms: int) -> int | None:
    return ms * 1000 if 0 <= ms <= LATEST_TIMESTAMP_MS else None


def _record_batch(records: list[Any]) -> Any:
    """Kafka records, each with its parsed tick, as one Arrow record batch."""
    import pyarrow as pa

    parsed = [_parse(r) for r in records]
    ticks = [fields for fields, _ in parsed]
    tick_types = {
        "price": pa.float64(), "event_time_ms": pa.int64(), "ingest_time_ms": pa.int64(),
        "market_cap": pa.float64(), "volume_24h": pa.float64(), "change_24h_pct": pa.float64(),
        "number_of_markets": pa.int64(), "total_supply": pa.float64(),
    }  # fmt: skip
    return pa.RecordBatch.from_arrays(
        [
            pa.array([r.topic for r in records], pa.string()),
            pa.array([r.partition for r in records], pa.int32()),
            pa.array([r.offset for r in records], pa.int64()),
            pa.array([_timestamp_us(r.timestamp) for r in records], pa.timestamp("us", tz="UTC")),
            pa.array([r.key for r in records], pa.binary()),
            pa.array([r.value for r in records], pa.binary()),
            *(
                pa.array([t.get(name) for t in ticks], tick_types.get(name, pa.string()))
                for name in TICK_FIELDS
            ),
            pa.array([reason for _, reason in parsed], pa.string()),
        ],
        names=["topic", "partition", "offset", "timestamp", "key", "value", *TICK_FIELDS,
               "invalid_reason"],
    )  # fmt: skip


# Options that stay text even when all digits (a numeric password is still a password).
TEXT_OPTIONS = frozenset({"sasl_plain_username", "sasl_plain_password", "ssl_password"})


def consumer_config(options: dict[str, str]) -> dict[str, Any]:
    """kafka-python settings from Spark's `kafka.*` options."""
    config: dict[str, Any] = {}
    for key, value in options.items():
        if key.lower().startswith("kafka."):
            name = key[len("kafka.") :].replace(".", "_")
            numeric = value.isdigit() and name not in TEXT_OPTIONS
            config[name] = int(value) if numeric else value
    if "bootstrap_servers" not in config:
        raise ValueError("option kafka.bootstrap.servers is required")
    return config


ConsumerKey = tuple[tuple[str, Any], ...]
# Idle consumers of this process, by their settings. Spark reuses a Python worker from task
# to task (spark.python.worker.reuse, on by default), so a task takes a connected consumer
# instead of bootstrapping its own (about half of a small task's time on the local broker).
_idle: dict[ConsumerKey, list[Any]] = {}
_idle_lock = threading.Lock()


@contextmanager
def pooled_consumer(config: dict[str, Any]) -> Iterator[Any]:
    """A consumer with these settings, idle in this process or new; kept for the next task.

    A task that fails or stops early closes its consumer rather than hand on one in an
    unknown state. The next user must `assign` and `seek`: a consumer keeps its previous
    partitions and position.
    """
    key = tuple(sorted(config.items()))
    with _idle_lock:
        idle = _idle.get(key)
        consumer = idle.pop() if idle else None
    if consumer is None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(**config, enable_auto_commit=False, group_id=None)
    try:
        yield consumer
    except BaseException:
        consumer.close()
        raise
    with _idle_lock:
        _idle.setdefault(key, []).append(consumer)


@atexit.register
def close_idle_consumers() -> None:
    """Close every idle consumer of this process, at its exit or before its broker stops.

    Spark's forked workers leave by `os._exit`, which skips this: their sockets close with
    the process, and a consumer without a group holds nothing on the broker.
    """
    with _idle_lock:
        consumers = [consumer for idle in _idle.values() for consumer in idle]
        _idle.clear()
    for consumer in consumers:
        consumer.close()


class DataLoss(RuntimeError):
    """Offsets the query still had to read were removed by retention (`failOnDataLoss`)."""


class KafkaPartition(InputPartition):
    """Offsets [start, end) of one Kafka partition."""

    def __init__(self, topic: str, partition: int, start: int, end: int) -> None:
        self.topic, self.partition, self.start, self.end = topic, partition, start, end


class KafkaDataSource(DataSource):
    """`spark.readStream.format("crypto_kafka").option("subscribe", topic)...`."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return SCHEMA

    def streamReader(self, schema: Any) -> DataSourceStreamReader:
        return KafkaStreamReader(dict(self.options))


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Plans offset ranges on the driver; `read` runs on executors."""

    def __init__(self, options: dict[str, str]) -> None:
        lowered = {key.lower(): value for key, value in options.items()}
        if "subscribe" not in lowered:
            raise ValueError("option subscribe (the topic) is required")
        self.topic = lowered["subscribe"]
        self.config = consumer_config(options)
        # Executors' consumers: large fetches, unless the options say otherwise. A range's
        # start removed by retention since it was planned resets to the earliest retained
        # offset (never the end: that would pass over the retained rest of the range).
        self.read_config = {
            "max_partition_fetch_bytes": 8 * 1024 * 1024,
            **self.config,
            "auto_offset_reset": "earliest",
        }
        self.starting = lowered.get("startingoffsets", "earliest")
        if self.starting not in ("earliest", "latest"):
            raise ValueError("startingOffsets must be earliest or latest")
        max_rows = lowered.get("maxoffsetspertrigger")
        self.max_rows = int(max_rows) if max_rows else None
        self.fail_on_data_loss = lowered.get("failondataloss", "true").lower() != "false"
        min_partitions = lowered.get("minpartitions", "1")
        if not min_partitions.isdigit() or int(min_partitions) < 1:
            raise ValueError(f"minPartitions must be a whole number >= 1, not {min_partitions!r}")
        self.min_partitions = int(min_partitions)
        self.lost_offsets = 0
        self._target: Offsets | None = None
        self._consumer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_consumer"] = None  # a live client never travels to executors
        return state

    def _client(self) -> Any:
        if self._consumer is None:
            from kafka import KafkaConsumer

            self._consumer = KafkaConsumer(**self.config, enable_auto_commit=False, group_id=None)
        return self._consumer

    def _offsets(self, which: str) -> Offsets:
        from kafka import TopicPartition

        client = self._client()
        numbers = sorted(client.partitions_for_topic(self.topic) or [])
        partitions = [TopicPartition(self.topic, number) for number in numbers]
        found = (
            client.beginning_offsets(partitions)
            if which == "earliest"
            else client.end_offsets(partitions)
        )
        return {str(tp.partition): int(offset) for tp, offset in found.items()}

    def initialOffset(self) -> Offsets:
        return self._offsets(self.starting)

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_rows) if self.max_rows else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = self._offsets("latest")

    def reportLatestOffset(self) -> Offsets:
        return self._offsets("latest")

    def latestOffset(self, start: Offsets, limit: ReadLimit) -> Offsets:
        latest = self._target or self._offsets("latest")
        earliest = self._offsets("earliest")
        # A partition added since the last batch starts at its beginning.
        wanted = {p: start.get(p, earliest.get(p, 0)) for p in latest}
        self._check_data_loss(wanted, earliest)
        begin = {p: max(wanted[p], earliest.get(p, 0)) for p in latest}
        available = {p: max(0, latest[p] - begin[p]) for p in latest}
        if isinstance(limit, ReadMaxRows):
            available = _share(available, limit.max_rows)
        return {p: begin[p] + available[p] for p in latest}

    def _check_data_loss(self, wanted: Offsets, earliest: Offsets) -> None:
        """Offsets removed by retention before they were read: counted, and fatal by default."""
        gaps = {p: (wanted[p], earliest[p]) for p in wanted if earliest.get(p, 0) > wanted[p]}
        if gaps:
            self.lost_offsets += self._data_loss(gaps)

    def _data_loss(self, gaps: dict[str, tuple[int, int]]) -> int:
        """Raise `DataLoss` for these [first, retained start) ranges, or log and count them."""
        lost = sum(end - start for start, end in gaps.values())
        where = ", ".join(f"[{p}] {a}..{b - 1}" for p, (a, b) in sorted(gaps.items()))
        message = (
            f"{self.topic}: {lost} offsets were removed (retention) before they were read: "
            f"{where}. Their ticks are in MongoDB if the sink read them in time"
        )
        if self.fail_on_data_loss:
            raise DataLoss(
                f"{message}; set CRYPTO_SPARK_FAIL_ON_DATA_LOSS=false (the option "
                "failOnDataLoss=false) to skip them"
            )
        log.warning("%s; skipped (failOnDataLoss=false)", message)
        return lost

    def partitions(self, start: Offsets, end: Offsets) -> list[KafkaPartition]:
        ranges = [
            KafkaPartition(self.topic, int(p), start.get(p, 0), end[p])
            for p in sorted(end, key=int)
            if end[p] > start.get(p, 0)
        ]
        return split_ranges(ranges, self.min_partitions)

    def read(self, partition: KafkaPartition) -> Iterator[Any]:  # type: ignore[override]
        """Yield Arrow record batches (columnar: far cheaper to hand to the JVM than rows)."""
        from kafka import TopicPartition

        tp = TopicPartition(partition.topic, partition.partition)
        with pooled_consumer(self.read_config) as consumer:
            consumer.assign([tp])  # replaces what the consumer read before
            consumer.seek(tp, partition.start)  # kafka-python drops fetches from elsewhere
            position = partition.start
            empty_polls = 0
            while position < partition.end:
                records = consumer.poll(timeout_ms=1000, max_records=ARROW_BATCH_ROWS).get(tp, [])
                if records and records[0].offset > position:  # a jump: removed since planned?
                    begins = consumer.beginning_offsets([tp])[tp]
                    if begins > position:
                        gap = (position, min(begins, partition.end))
                        self._data_loss({str(tp.partition): gap})
                empty_polls = 0 if records else empty_polls + 1
                if empty_polls >= 30:
                    raise RuntimeError(
                        f"{tp.topic}[{tp.partition}]: no records at offset {position} for 30 s "
                        f"(expected up to {partition.end}); was the topic truncated?"
                    )
                # Only offsets still due in this range: never one read before, nor one past it.
                wanted = [r for r in records if position <= r.offset < partition.end]
                if wanted:
                    position = wanted[-1].offset + 1
                    yield _record_batch(wanted)
                if records and records[-1].offset >= partition.end:
                    return
                position = max(position, consumer.position(tp))

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def split_ranges(ranges: list[KafkaPartition], min_partitions: int) -> list[KafkaPartition]:
    """At least `min_partitions` ranges, as far as there are offsets (Spark's `minPartitions`).

    Fewer ranges than that are cut into consecutive pieces, each extra piece going to the
    range whose pieces are then the largest, so that pieces are about equal over all ranges
    (a large range is cut most, a small one perhaps not at all). The pieces of a range
    cover exactly its offsets, without overlap.
    """
    if len(ranges) >= min_partitions:
        return ranges
    parts = [1] * len(ranges)
    sizes = [r.end - r.start for r in ranges]
    largest = [(-float(size), i) for i, size in enumerate(sizes) if size > 1]
    heapq.heapify(largest)
    for _ in range(min_partitions - len(ranges)):
        if not largest:
            break
        _, i = heapq.heappop(largest)
        parts[i] += 1
        if parts[i] < sizes[i]:
            heapq.heappush(largest, (-sizes[i] / parts[i], i))
    pieces = []
    for r, size, count in zip(ranges, sizes, parts, strict=True):
        cuts = [r.start + size * k // count for k in range(count + 1)]
        pieces += [KafkaPartition(r.topic, r.partition, a, b) for a, b in pairwise(cuts)]
    return pieces


def _share(available: Offsets, budget: int) -> Offsets:
    """Split `budget` rows over partitions fairly (round by round), never over what each has."""
    taken = {p: 0 for p in available}
    remaining = budget
    while remaining > 0:
        open_partitions = [p for p in available if taken[p] < available[p]]
        if not open_partitions:
            break
        slice_ = max(1, remaining // len(open_partitions))
        for p in open_partitions:
            step = min(slice_, available[p] - taken[p], remaining)
            taken[p] += step
            remaining -= step
            if remaining == 0:
                break
    return taken
