"""The soak: the whole pipeline at a steady rate for some minutes, sampled as it runs.

The producer (simulated source) and the MongoDB sink run as `crypto-platform` processes,
started as the chaos run starts them; the Spark job runs in this process, so its queries'
progress can be read live. Every SAMPLE_S the run reads Spark's progress, every process's
memory and Kafka's lag, and files each figure under the minute it belongs to.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaError
from pyspark.sql import SparkSession

from crypto_platform.bench import soak_probe
from crypto_platform.bench.fixtures import fresh, measured_stack, median, percentile
from crypto_platform.bench.flatness import Minute, state_fill_s
from crypto_platform.bench.spark import TRIGGER_S
from crypto_platform.chaos.pipeline import PRODUCER, SINK, Pipeline
from crypto_platform.errors import PlatformError
from crypto_platform.reports.stores import KafkaClients, open_kafka
from crypto_platform.settings import Settings
from crypto_platform.spark.job import run_aggregation
from crypto_platform.spark.session import spark_session
from crypto_platform.stack import LocalStack
from crypto_platform.ticks import now_ms

log = logging.getLogger(__name__)

RATE = 1000.0  # ticks per second
SAMPLE_S = 5
START_TIMEOUT_S = 300.0  # the Spark job's first progress on a busy 2-core machine


@dataclass
class SoakRun:
    """What the run did: its options and each minute's figures."""

    options: dict[str, Any]
    minutes: list[Minute]


@dataclass
class _Bucket:
    """One minute's samples, before they are summed up."""

    state_rows: list[int] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)
    sink_lag: list[int] = field(default_factory=list)
    spark_lag: list[int] = field(default_factory=list)
    topic_total: int | None = None


class Recorder:
    """Files samples and batches under their minute of the run (minute 0 starts at `started_ms`)."""

    def __init__(self, count: int, started_ms: int, topic_total: int | None) -> None:
        self.started_ms = started_ms
        self.start_total = topic_total
        self.buckets = [_Bucket() for _ in range(count)]
        self.batches: dict[tuple[str, int], soak_probe.Batch] = {}

    def add_batches(self, found: list[soak_probe.Batch]) -> None:
        for batch in found:
            self.batches.setdefault(batch.key, batch)

    def add_sample(self, index: int, sample: dict[str, Any]) -> None:
        bucket = self.buckets[index]
        if sample["state_rows"] is not None:
            bucket.state_rows.append(sample["state_rows"])
        for name, mib in sample["rss"].items():
            bucket.rss.setdefault(name, []).append(mib)
        if sample["topic_total"] is not None:
            bucket.topic_total = sample["topic_total"]
            bucket.sink_lag.append(sample["sink_lag"])
        if sample["spark_lag"] is not None:
            bucket.spark_lag.append(sample["spark_lag"])

    def minute(self, index: int) -> Minute:
        bucket = self.buckets[index]
        before = self.buckets[index - 1].topic_total if index else self.start_total
        return Minute(
            minute=index + 1,
            batch_s=[
                b.seconds
                for b in sorted(self.batches.values(), key=lambda b: b.ended_ms)
                if (b.ended_ms - self.started_ms) // 60_000 == index
            ],
            state_rows=max(bucket.state_rows, default=None),
            rss_mib={n: round(sum(v) / len(v), 1) for n, v in sorted(bucket.rss.items())},
            sink_lag=max(bucket.sink_lag, default=None),
            spark_lag=max(bucket.spark_lag, default=None),
            produced=None
            if bucket.topic_total is None or before is None
            else bucket.topic_total - before,
        )


def run_soak(
    settings: Settings, count: int, *, own_stack: bool, say: Callable[[str], None] = log.info
) -> SoakRun:
    """`count` minutes of the pipeline at RATE ticks/s, on a stack of its own or the given."""
    with measured_stack(settings, own_stack=own_stack, say=say) as measured:
        soak_settings = fresh(measured, "soak").model_copy(
            update={"spark_trigger_interval_s": TRIGGER_S, "spark_starting_offsets": "earliest"}
        )
        return _soak(soak_settings, count, say)


def _soak(settings: Settings, count: int, say: Callable[[str], None]) -> SoakRun:
    pipeline = Pipeline(settings, RATE, settings.data_dir / "bench-soak")
    spark = spark_session(settings.model_copy(update={"spark_master": "local[2]"}), "bench-soak")
    # Spark warns of every batch longer than the trigger: the figures per minute say it.
    spark.sparkContext.setLogLevel("ERROR")
    stop = threading.Event()
    failure: list[BaseException] = []
    spark_thread = threading.Thread(
        target=_aggregate, args=(spark, settings, stop, failure), name="soak-spark"
    )
    try:
        pipeline.start(SINK)
        spark_thread.start()
        say("waiting for the Spark job's first progress (its start takes a while)")
        _wait_for_progress(spark, spark_thread, failure)
        pipeline.start(PRODUCER)
        say(f"producing {RATE:,.0f} ticks/s for {count} minutes; a line per minute")
        minutes = _record(spark, settings, pipeline, count, spark_thread, failure, say)
    finally:
        pipeline.shutdown()
        stop.set()
        if spark_thread.is_alive():
            spark_thread.join()
        spark.stop()
    window, watermark = settings.aggregate_window_s, settings.aggregate_watermark_s
    options = {
        "minutes": count,
        "rate": RATE,
        "trigger_s": TRIGGER_S,
        "sample_s": SAMPLE_S,
        "symbols": len(settings.symbols),
        "window_s": window,
        "slide_s": settings.aggregate_slide_s,
        "watermark_s": watermark,
        "state_fill_minutes": math.ceil(state_fill_s(window, watermark) / 60),
    }
    return SoakRun(options, minutes)


def _aggregate(
    spark: SparkSession, settings: Settings, stop: threading.Event, failure: list[BaseException]
) -> None:
    try:
        run_aggregation(spark, settings, stop)
    except Exception as error:
        failure.append(error)


def _check_spark(spark_thread: threading.Thread, failure: list[BaseException]) -> None:
    if failure:
        raise PlatformError(f"the Spark job stopped during the soak: {failure[0]}")
    if not spark_thread.is_alive():
        raise PlatformError("the Spark job stopped during the soak")


def _wait_for_progress(
    spark: SparkSession, spark_thread: threading.Thread, failure: list[BaseException]
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (queries := spark.streams.active) or not all(q.lastProgress for q in queries):
        _check_spark(spark_thread, failure)
        if time.monotonic() > deadline:
            raise PlatformError(f"the Spark job reported no progress within {START_TIMEOUT_S:.0f}s")
        time.sleep(1.0)


def _check_running(
    pipeline: Pipeline, spark_thread: threading.Thread, failure: list[BaseException]
) -> None:
    _check_spark(spark_thread, failure)
    for name in (PRODUCER, SINK):
        process = pipeline.components[name].process
        if process.pid() is None:
            raise PlatformError(
                f"the {name} ended during the soak; its last lines:\n{process.log_tail(5)}"
            )


def _sample(
    spark: SparkSession, settings: Settings, kafka: KafkaClients, named: dict[str, int | None]
) -> dict[str, Any]:
    try:
        topic_total, sink_lag, spark_lag = soak_probe.lags(kafka, settings, spark)
    except KafkaError as error:
        log.warning("Kafka did not answer this sample (%s)", error)
        topic_total, sink_lag, spark_lag = None, None, None
    return {
        "state_rows": soak_probe.state_rows(spark),
        "rss": soak_probe.memory_mib(named),
        "topic_total": topic_total,
        "sink_lag": sink_lag,
        "spark_lag": spark_lag,
    }


def _record(
    spark: SparkSession,
    settings: Settings,
    pipeline: Pipeline,
    count: int,
    spark_thread: threading.Thread,
    failure: list[BaseException],
    say: Callable[[str], None],
) -> list[Minute]:
    """Sample every SAMPLE_S for `count` minutes; a sample at t counts for the minute it ends."""
    servers = [server.process for server in LocalStack(settings).servers]
    kafka = open_kafka(settings)
    try:
        started = now_ms()
        recorder = Recorder(count, started, soak_probe.lags(kafka, settings, spark)[0])
        for step in range(1, count * 60 // SAMPLE_S + 1):
            time.sleep(max(0.0, (started + step * SAMPLE_S * 1000 - now_ms()) / 1000))
            _check_running(pipeline, spark_thread, failure)
            named = {name: c.process.pid() for name, c in pipeline.components.items()}
            named |= {server.name: server.pid() for server in servers}
            index = (step * SAMPLE_S - 1) // 60
            recorder.add_batches(soak_probe.batches(spark))
            recorder.add_sample(index, _sample(spark, settings, kafka, named))
            if step * SAMPLE_S % 60 == 0:
                say(_progress_line(recorder.minute(index), count))
        return [recorder.minute(index) for index in range(count)]
    finally:
        kafka.close()


def _progress_line(minute: Minute, count: int) -> str:
    batch = minute.batch_s
    produced = (
        "-" if minute.produced is None else f"{minute.produced:,} ({minute.produced / 60:,.0f}/s)"
    )
    return (
        f"minute {minute.minute}/{count}: {len(batch)} batches, p50 {median(batch):.2f} s, "
        f"p99 {percentile(batch, 0.99):.2f} s; state rows {minute.state_rows}; produced "
        f"{produced}; lag: sink {minute.sink_lag}, Spark {minute.spark_lag}; RSS "
        f"{sum(minute.rss_mib.values()):,.0f} MiB in all"
    )
