"""Producer, MongoDB sink and end-to-end latency, each beside the bare clients."""

from __future__ import annotations

import threading
import time

from kafka import KafkaProducer
from pymongo import WriteConcern

from crypto_platform.bench.commit_times import CommitLatencies
from crypto_platform.bench.fixtures import (
    bare_polls,
    fresh,
    percentile,
    prefill,
    simulated_ticks,
)
from crypto_platform.settings import Settings
from crypto_platform.sources.simulated import SimulatedSource
from crypto_platform.storage import mongo
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.streaming.producer import TickProducer, run_producer
from crypto_platform.streaming.progress import Progress
from crypto_platform.streaming.sink import MongoSink, run_sink

QUIET = 1e9  # a progress interval that never reports during a measurement


def producer_throughput(settings: Settings, count: int, symbol_list: list[str]) -> dict:
    """Ours (simulated source at full speed, model, JSON, producer) vs a bare send loop."""
    bare_settings = fresh(settings, "bare_producer")
    messages = [
        (tick.symbol.encode(), tick.to_json()) for tick in simulated_ticks(count, symbol_list)
    ]
    bare = KafkaProducer(
        **kafka_client_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
    )
    started = time.perf_counter()
    for key, value in messages:
        bare.send(bare_settings.kafka_topic, key=key, value=value)
    bare.flush()
    bare_rate = count / (time.perf_counter() - started)
    bare.close()

    ours_settings = fresh(settings, "producer")
    producer = TickProducer(ours_settings)
    source = SimulatedSource(symbol_list, seed=7)
    started = time.perf_counter()
    run_producer(
        source, producer, threading.Event(), count=count, progress=Progress("bench", every=QUIET)
    )
    ours_rate = count / (time.perf_counter() - started)
    producer.close()
    return {
        "ticks": count,
        "ours_per_s": round(ours_rate),
        "bare_per_s": round(bare_rate),
        "ratio": round(ours_rate / bare_rate, 3),
    }


def _bare_consume(settings: Settings, count: int) -> float:
    started = None
    for _records in bare_polls(settings, count):
        started = started or time.perf_counter()
    return count / (time.perf_counter() - (started or time.perf_counter()))


def _bare_insert(settings: Settings, documents: list[dict]) -> float:
    """insert_many into a collection indexed like crypto.prices: the work the sink does."""
    with mongo.connect(settings) as client:
        collection = client[settings.mongo_database]["bare_prices"]
        mongo.ensure_indexes(collection)
        collection = collection.with_options(write_concern=WriteConcern(w=1, j=True))
        started = time.perf_counter()
        for start in range(0, len(documents), 5000):
            collection.insert_many(documents[start : start + 5000], ordered=False)
        return len(documents) / (time.perf_counter() - started)


def sink_throughput(settings: Settings, count: int, symbol_list: list[str]) -> dict:
    """Ours (Kafka to MongoDB, commit after write) vs its two bare steps on the same data."""
    isolated = fresh(settings, "sink")
    ticks = simulated_ticks(count, symbol_list)
    prefill(isolated, ticks)
    consume_rate = _bare_consume(isolated, count)
    insert_rate = _bare_insert(isolated, [tick.to_document() for tick in ticks])

    sink = MongoSink(isolated)
    stop = threading.Event()
    started = None
    while sink.stats.consumed < count:
        if sink.poll_once(stop) and started is None:
            started = time.perf_counter()
    sink.flush()  # stored and committed, not just handed to the writer
    ours_rate = count / (time.perf_counter() - (started or time.perf_counter()))
    sink.close()
    slower = min(consume_rate, insert_rate)
    return {
        "ticks": count,
        "ours_per_s": round(ours_rate),
        "bare_consume_per_s": round(consume_rate),
        "bare_insert_many_per_s": round(insert_rate),
        "ratio": round(ours_rate / slower, 3),
    }


def end_to_end_latency(
    settings: Settings, rate: float, seconds: float, symbol_list: list[str]
) -> dict:
    """Ingest time to MongoDB's commit of the insert, at a steady `rate` ticks per second."""
    isolated = fresh(settings, f"latency{int(rate)}")
    stop_sink = threading.Event()
    sink = MongoSink(isolated)
    sink_thread = threading.Thread(
        target=run_sink, args=(sink, stop_sink), kwargs={"progress": Progress("bench", every=QUIET)}
    )
    try:
        with CommitLatencies(sink.collection) as commits:
            sink_thread.start()
            while not sink.consumer.assignment():
                time.sleep(0.05)
            producer = TickProducer(isolated)
            source = SimulatedSource(symbol_list, rate=rate)
            run_producer(
                source,
                producer,
                threading.Event(),
                duration=seconds,
                progress=Progress("bench", every=QUIET),
            )
            sent = producer.stats.sent
            producer.close()
            commits.wait_for(sent, timeout_s=60)
    finally:
        stop_sink.set()
        if sink_thread.is_alive():
            sink_thread.join()
        sink.close()
    latencies = commits.latencies_ms
    return {
        "rate": rate,
        "ticks": len(latencies),
        "sent": sent,
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
    }
