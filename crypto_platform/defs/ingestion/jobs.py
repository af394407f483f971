"""`ingest_prices` (source to Kafka) and `persist_prices` (Kafka to MongoDB): long-running.

Each is one op that runs until its run is terminated; every `progress_every_s` seconds
it logs counts and rates, and at most once a minute records them on its asset: a
materialisation when new ticks landed, an observation otherwise (see `AssetProgress`).
Terminated, it flushes or commits, records its last counts, and the run ends Canceled.
"""

import threading
from collections.abc import Callable

import dagster as dg

from crypto_platform.defs.resources.clients import (
    KafkaResource,
    MongoResource,
    PriceSourceResource,
    settings_for,
)
from crypto_platform.defs.streams.assets import KAFKA_PRICES, MONGO_PRICES
from crypto_platform.defs.streams.long_running import (
    STREAMING_TAGS,
    AssetProgress,
    run_until_terminated,
)
from crypto_platform.streaming.producer import TickProducer, run_producer
from crypto_platform.streaming.progress import Progress, Snapshot
from crypto_platform.streaming.sink import MongoSink, run_sink


class StreamingConfig(dg.Config):
    """How often a long-running op logs progress, and records it on its asset."""

    progress_every_s: float = 10.0
    record_every_s: float = 60.0


@dg.op(description="Publish ticks from the price source to Kafka until terminated.")
def publish_ticks(
    context: dg.OpExecutionContext,
    config: StreamingConfig,
    kafka: KafkaResource,
    price_source: PriceSourceResource,
) -> None:
    settings = settings_for(kafka, price_source)
    source = price_source.build(settings)
    context.log.info(f"publishing {source.name} ticks for {', '.join(source.symbols)}")

    def loop(stop: threading.Event, report: Callable[[Snapshot], None]) -> None:
        producer = TickProducer(settings)
        try:
            progress = Progress("ingest_prices", report, every=config.progress_every_s)
            run_producer(source, producer, stop, progress=progress)
        finally:
            try:
                producer.close()  # raises when ticks were not delivered
            finally:
                source.close()

    record = AssetProgress(
        context,
        [KAFKA_PRICES],
        static={"source": source.name, "topic": settings.kafka_topic},
        min_interval_s=config.record_every_s,
    )

    def relay(snapshot: Snapshot) -> None:
        record.static["source"] = source.name  # `auto` may have switched source since
        record(snapshot)

    try:
        run_until_terminated(context, loop, relay)
    finally:
        record.flush()  # also when terminated: before the run ends Canceled


@dg.op(
    description="Store ticks from Kafka in MongoDB (dead letters to the DLQ) until terminated.",
    pool="mongo_sink",
)
def store_ticks(
    context: dg.OpExecutionContext,
    config: StreamingConfig,
    kafka: KafkaResource,
    mongo: MongoResource,
) -> None:
    settings = settings_for(kafka, mongo)
    context.log.info(
        f"storing {settings.kafka_topic} in {settings.mongo_database}.{settings.mongo_collection}"
    )
    record = AssetProgress(
        context,
        [MONGO_PRICES],
        counter="inserted",
        static={"group": settings.kafka_consumer_group},
        min_interval_s=config.record_every_s,
    )

    def loop(stop: threading.Event, report: Callable[[Snapshot], None]) -> None:
        sink = MongoSink(settings)

        def with_totals(snapshot: Snapshot) -> None:
            report({**snapshot, "documents": sink.document_count()})

        try:
            run_sink(
                sink,
                stop,
                progress=Progress("persist_prices", with_totals, every=config.progress_every_s),
            )
        finally:
            sink.close()

    try:
        run_until_terminated(context, loop, record)
    finally:
        record.flush()  # also when terminated: before the run ends Canceled


@dg.job(
    description="Long-running: the producer, from the price source to Kafka.",
    tags=STREAMING_TAGS,
    executor_def=dg.in_process_executor,
)
def ingest_prices() -> None:
    publish_ticks()


@dg.job(
    description="Long-running: the MongoDB sink, from Kafka to crypto.prices.",
    tags=STREAMING_TAGS,
    executor_def=dg.in_process_executor,
)
def persist_prices() -> None:
    store_ticks()
