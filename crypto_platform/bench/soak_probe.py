"""What a soak sample reads: Spark's progress, every process's memory, and Kafka lag.

Spark is read through `spark.streams.active` and each query's progress, whatever queries
the job runs, so nothing here depends on the job's query names or its own totals.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import psutil
from pyspark.sql import SparkSession

from crypto_platform.reports.stores import KafkaClients
from crypto_platform.reports.throughput import consumer_lag, end_offsets
from crypto_platform.settings import Settings

BENCH = "bench (Spark driver)"
SPARK_JVM = "Spark JVM"
SPARK_WORKERS = "Spark Python workers"
MIB = 2**20


@dataclass(frozen=True)
class Batch:
    """One micro-batch that read rows: which query and batch, when it ended, how long it took."""

    key: tuple[str, int]
    ended_ms: int
    seconds: float


def batches(spark: SparkSession) -> list[Batch]:
    """Every batch with input rows in the active queries' recent progress."""
    found = []
    for query in spark.streams.active:
        for progress in query.recentProgress:
            if not progress.get("numInputRows"):
                continue  # an empty trigger says nothing of batch time
            took_ms = progress["durationMs"]["triggerExecution"]
            started = dt.datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00"))
            found.append(
                Batch(
                    (progress["id"], progress["batchId"]),
                    int(started.timestamp() * 1000) + took_ms,
                    took_ms / 1000,
                )
            )
    return found


def _latest(spark: SparkSession) -> list[dict[str, Any]]:
    return [progress for query in spark.streams.active if (progress := query.lastProgress)]


def state_rows(spark: SparkSession) -> int | None:
    """Rows in every state store, summed over the latest progress of each query."""
    latest = _latest(spark)
    if not latest:
        return None
    return sum(
        operator.get("numRowsTotal", 0)
        for progress in latest
        for operator in progress.get("stateOperators", [])
    )


def _offsets(value: Any) -> dict[str, int]:
    """A source's offsets in a progress report (`{"0": 1200, ...}`, or that as JSON text)."""
    parsed = json.loads(value) if isinstance(value, str) else value
    return {str(key): int(offset) for key, offset in (parsed or {}).items()}


def lags(
    kafka: KafkaClients, settings: Settings, spark: SparkSession
) -> tuple[int, int, int | None]:
    """Messages in the topic, the sink group's lag, and the lag of the query furthest behind.

    A query's lag is the topic's end offsets minus its source's `endOffset` in its latest
    progress (what its last batch read up to); None before any progress.
    """
    ends = end_offsets(kafka, settings.kafka_topic)
    behind = [
        sum(end - read.get(str(tp.partition), 0) for tp, end in ends.items())
        for progress in _latest(spark)
        for source in progress.get("sources", [])
        if (read := _offsets(source.get("endOffset")))
    ]
    return sum(ends.values()), consumer_lag(kafka, settings), max(behind, default=None)


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0  # ended between listing and reading


def _tree(pid: int) -> list[psutil.Process]:
    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def _kind(process: psutil.Process) -> str:
    try:
        return SPARK_JVM if process.name() == "java" else SPARK_WORKERS
    except psutil.Error:
        return SPARK_WORKERS


def memory_mib(named: dict[str, int | None]) -> dict[str, float]:
    """RSS (MiB) of each named process with its descendants, of this process, and of Spark's.

    Spark's are this process's other descendants: the JVM, and the Python workers it
    starts (summed: they come and go).
    """
    me = psutil.Process()
    rss: dict[str, int] = {BENCH: _rss(me)}
    claimed = {me.pid}
    for name, pid in named.items():
        tree = _tree(pid) if pid is not None else []
        if tree:
            claimed |= {process.pid for process in tree}
            rss[name] = sum(_rss(process) for process in tree)
    for process in me.children(recursive=True):
        if process.pid not in claimed:
            kind = _kind(process)
            rss[kind] = rss.get(kind, 0) + _rss(process)
    return {name: round(value / MIB, 1) for name, value in rss.items()}
