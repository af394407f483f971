"""What every measurement starts from: fresh names on the stack, and ready-made ticks."""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from crypto_platform.settings import Settings
from crypto_platform.sources.simulated import START_PRICES, SimulatedSource
from crypto_platform.stack import LocalStack
from crypto_platform.stack.ephemeral import ephemeral_settings
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.streaming.topics import admin_client
from crypto_platform.ticks import Tick


@contextlib.contextmanager
def measured_stack(
    settings: Settings, *, own_stack: bool, say: Callable[[str], None]
) -> Iterator[Settings]:
    """The settings of a stack of its own (free ports, temp dir, stopped after), or the given."""
    if not own_stack:
        yield settings
        return
    with tempfile.TemporaryDirectory(prefix="crypto-bench-") as scratch:
        stack = LocalStack(ephemeral_settings(Path(scratch)))
        say(f"starting a stack of its own in {scratch}")
        stack.up(progress=lambda _: None)
        try:
            yield stack.settings
        finally:
            stack.down(progress=lambda _: None)


# This run's topics, so that dropping them leaves another bench's on a shared stack alone.
TOPIC_PREFIX = f"bench-{uuid.uuid4().hex[:6]}-"


def fresh(settings: Settings, label: str) -> Settings:
    """The settings with a topic, group, database and keyspace of their own, provisioned."""
    tag = f"{label}_{uuid.uuid4().hex[:6]}"
    isolated = settings.model_copy(
        update={
            "kafka_topic": f"{TOPIC_PREFIX}{tag}",
            "kafka_dlq_topic": f"{TOPIC_PREFIX}{tag}.dlq",
            "kafka_consumer_group": f"bench-{tag}",
            "kafka_consumer_instance_id": f"bench-{tag}",
            "mongo_database": f"bench_{tag}",
            "cassandra_keyspace": f"bench_{tag}",
            "spark_checkpoint_dir": settings.data_dir / "bench-checkpoints" / tag,
        }
    )
    LocalStack(isolated).provision(progress=lambda _: None)
    return isolated


def drop_topics(settings: Settings) -> None:
    """Delete the topics `fresh` made in this process.

    The local broker rewrites its whole state, retained messages included, about once a
    second, so the ticks of earlier steps (over a million in a full run) slow later ones.
    """
    admin = admin_client(settings)
    try:
        names = [name for name in admin.list_topics() if name.startswith(TOPIC_PREFIX)]
        if names:
            admin.delete_topics(names)
    finally:
        admin.close()


def symbols(count: int) -> list[str]:
    """`count` symbols: the well-known ones first, then made-up ones (S0001, ...)."""
    known = list(START_PRICES)
    made_up = (f"S{i:04d}" for i in itertools.count(1))
    return (known + list(itertools.islice(made_up, max(0, count - len(known)))))[:count]


def simulated_stream(count: int, symbol_list: list[str], seed: int = 7) -> Iterator[Tick]:
    """`count` simulated ticks with distinct identities, made one at a time as they are used."""
    source = SimulatedSource(symbol_list, seed=seed)
    batches = itertools.chain.from_iterable(source.batches(threading.Event()))
    return itertools.islice(batches, count)


def simulated_ticks(count: int, symbol_list: list[str], seed: int = 7) -> list[Tick]:
    """`count` simulated ticks with distinct identities, made before any clock starts."""
    return list(simulated_stream(count, symbol_list, seed))


def prefill(settings: Settings, ticks: Iterable[Tick]) -> None:
    """Put `ticks` into the settings' topic with a bare producer (fast, not measured).

    Ticks are made as they are sent (a million would not fit in memory as objects), in
    large batches: about 18,000 a second here, so a million take under 1.5 minutes.
    """
    producer = KafkaProducer(**kafka_client_options(settings), linger_ms=20, batch_size=512 * 1024)
    for tick in ticks:
        producer.send(settings.kafka_topic, key=tick.symbol.encode(), value=tick.to_json())
    producer.flush()
    producer.close()


def bare_polls(settings: Settings, count: int) -> Iterator[list[ConsumerRecord]]:
    """The topic's first `count` records, a poll at a time, read by a bare consumer (no group)."""
    consumer = KafkaConsumer(
        **kafka_client_options(settings), enable_auto_commit=False, max_poll_records=5000
    )
    try:
        topic = settings.kafka_topic
        consumer.assign(
            [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        )
        consumer.seek_to_beginning()
        seen = 0
        while seen < count:
            records = [r for batch in consumer.poll(timeout_ms=1000).values() for r in batch]
            if records:
                seen += len(records)
                yield records
    finally:
        consumer.close()


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank), e.g. 0.99 for p99."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
