"""What every measurement starts from: fresh names on the stack, and ready-made ticks."""

from __future__ import annotations

import itertools
import math
import statistics
import threading
import uuid

from kafka import KafkaProducer

from crypto_platform.settings import Settings
from crypto_platform.sources.simulated import START_PRICES, SimulatedSource
from crypto_platform.stack import LocalStack
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.ticks import Tick


def fresh(settings: Settings, label: str) -> Settings:
    """The settings with a topic, group, database and keyspace of their own, provisioned."""
    tag = f"{label}_{uuid.uuid4().hex[:6]}"
    isolated = settings.model_copy(
        update={
            "kafka_topic": f"bench-{tag}",
            "kafka_dlq_topic": f"bench-{tag}.dlq",
            "kafka_consumer_group": f"bench-{tag}",
            "kafka_consumer_instance_id": f"bench-{tag}",
            "mongo_database": f"bench_{tag}",
            "cassandra_keyspace": f"bench_{tag}",
            "spark_checkpoint_dir": settings.data_dir / "bench-checkpoints" / tag,
        }
    )
    LocalStack(isolated).provision(progress=lambda _: None)
    return isolated


def symbols(count: int) -> list[str]:
    """`count` symbols: the well-known ones first, then made-up ones (S0001, ...)."""
    known = list(START_PRICES)
    made_up = (f"S{i:04d}" for i in itertools.count(1))
    return (known + list(itertools.islice(made_up, max(0, count - len(known)))))[:count]


def simulated_ticks(count: int, symbol_list: list[str], seed: int = 7) -> list[Tick]:
    """`count` simulated ticks with distinct identities, made before any clock starts."""
    source = SimulatedSource(symbol_list, seed=seed)
    ticks: list[Tick] = []
    for batch in source.batches(threading.Event()):
        ticks.extend(batch)
        if len(ticks) >= count:
            return ticks[:count]
    return ticks


def prefill(settings: Settings, ticks: list[Tick]) -> None:
    """Put `ticks` into the settings' topic with a bare producer (fast, not measured)."""
    producer = KafkaProducer(**kafka_client_options(settings), linger_ms=20, batch_size=512 * 1024)
    for tick in ticks:
        producer.send(settings.kafka_topic, key=tick.symbol.encode(), value=tick.to_json())
    producer.flush()
    producer.close()


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank), e.g. 0.99 for p99."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
