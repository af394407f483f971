"""The Spark Kafka source: exact offsets however the reads are cut, and no silent loss."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from pyspark.sql import SparkSession
from pyspark.sql.functions import spark_partition_id
from pyspark.sql.streaming.datasource import ReadAllAvailable

from crypto_platform.settings import Settings
from crypto_platform.spark.kafka_source import (
    SOURCE_NAME,
    DataLoss,
    KafkaPartition,
    KafkaStreamReader,
    close_idle_consumers,
    consumer_config,
    pooled_consumer,
)
from crypto_platform.streaming.kafka_options import spark_kafka_options
from crypto_platform_tests.streaming_helpers import wait_for


def produce(settings: Settings, per_partition: int) -> None:
    """`per_partition` records into each of the topic's partitions (values need not be ticks)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    for partition in range(settings.kafka_partitions):
        for number in range(per_partition):
            producer.send(settings.kafka_topic, value=b"%d" % number, partition=partition)
    producer.flush()
    producer.close()


def source_options(settings: Settings, **extra: str) -> dict[str, str]:
    return {"subscribe": settings.kafka_topic, **spark_kafka_options(settings), **extra}


def test_offsets_removed_by_retention_fail_by_default_or_are_counted(settings: Settings) -> None:
    topic = f"{settings.kafka_topic}.short"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "200"})])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    for number in range(10):
        producer.send(topic, value=b"%d" % number)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    tp = TopicPartition(topic, 0)
    wait_for(lambda: consumer.beginning_offsets([tp])[tp] > 0, 120, "retention to remove offsets")
    earliest = consumer.beginning_offsets([tp])[tp]
    consumer.close()
    options = {"subscribe": topic, "kafka.bootstrap.servers": settings.kafka_bootstrap_servers}

    strict = KafkaStreamReader(options)
    with pytest.raises(DataLoss, match=f"{earliest} offsets were removed"):
        strict.latestOffset({"0": 0}, ReadAllAvailable())
    strict.stop()

    lenient = KafkaStreamReader({**options, "failOnDataLoss": "false"})
    assert lenient.latestOffset({"0": 0}, ReadAllAvailable())["0"] == 10
    assert lenient.lost_offsets == earliest
    lenient.stop()


def test_a_range_removed_after_planning_is_refused_or_read_exactly_as_retained(
    settings: Settings,
) -> None:
    topic = f"{settings.kafka_topic}.trimmed"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    # Small segments: retention removes whole segments, so the older records can go alone.
    segments = {"retention.ms": "3600000", "segment.bytes": "100", "segment.ms": "1000"}
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs=segments)])
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    for batch in range(2):  # offsets 0..9, then 10..19 ten seconds later
        for number in range(10):
            producer.send(topic, value=b"%d" % (10 * batch + number))
        producer.flush()
        if batch == 0:
            time.sleep(10)
    producer.close()
    planned = KafkaPartition(topic, 0, 0, 20)  # planned while all twenty were there
    # Then retention removes the older ten (the job was stopped), and the newer stay.
    set_retention(admin, topic, 8000)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    tp = TopicPartition(topic, 0)
    try:
        wait_for(lambda: consumer.beginning_offsets([tp])[tp] == 10, 30, "the older ten removed")
    finally:
        consumer.close()
    set_retention(admin, topic, 3_600_000)
    admin.close()
    options = {"subscribe": topic, "kafka.bootstrap.servers": settings.kafka_bootstrap_servers}

    with pytest.raises(DataLoss, match=r"10 offsets were removed .*: \[0\] 0..9"):
        list(KafkaStreamReader(options).read(planned))
    lenient = KafkaStreamReader({**options, "failOnDataLoss": "false"})
    read = [o for batch in lenient.read(planned) for o in batch.column("offset").to_pylist()]

    assert read == list(range(10, 20))  # exactly what is retained, not a jump to the end


def set_retention(admin: KafkaAdminClient, topic: str, retention_ms: int) -> None:
    config = {"retention.ms": str(retention_ms)}
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=config)])


def test_numeric_credentials_stay_text_and_numeric_settings_become_numbers() -> None:
    config = consumer_config(
        {
            "kafka.bootstrap.servers": "broker:9093",
            "kafka.sasl.plain.username": "1234",
            "kafka.sasl.plain.password": "987654",
            "kafka.request.timeout.ms": "30000",
        }
    )

    assert config["sasl_plain_username"] == "1234"
    assert config["sasl_plain_password"] == "987654"
    assert config["request_timeout_ms"] == 30000


def test_min_partitions_cuts_large_ranges_into_exact_pieces() -> None:
    start = {"0": 0, "1": 40, "2": 7, "3": 0}
    end = {"0": 1000, "1": 50, "2": 7, "3": 1}  # 1000, 10, none and 1 offsets
    options = {"subscribe": "t", "kafka.bootstrap.servers": "127.0.0.1:9"}

    for wanted in (1, 3, 4, 7, 50, 5000):
        pieces = KafkaStreamReader({**options, "minPartitions": str(wanted)}).partitions(start, end)

        assert len(pieces) >= min(wanted, 1011)
        assert all(piece.start < piece.end for piece in pieces)
        # Every planned offset in exactly one piece, and no other offset.
        covered = Counter(
            (piece.partition, o) for piece in pieces for o in range(piece.start, piece.end)
        )
        assert covered == {(int(p), o): 1 for p in end for o in range(start[p], end[p])}
    # Extra pieces go where the offsets are: the 1000-offset range is cut, the others not.
    seven = KafkaStreamReader({**options, "minPartitions": "7"}).partitions(start, end)
    assert Counter(piece.partition for piece in seven) == {0: 5, 1: 1, 3: 1}
    with pytest.raises(ValueError, match="minPartitions"):
        KafkaStreamReader({**options, "minPartitions": "0"})


def test_a_reused_consumer_reads_exactly_each_planned_range(settings: Settings) -> None:
    produce(settings, 200)
    reader = KafkaStreamReader(source_options(settings))

    def offsets(partition: int, start: int, end: int) -> list[tuple[int, int]]:
        batches = reader.read(KafkaPartition(settings.kafka_topic, partition, start, end))
        return [(row["partition"], row["offset"]) for batch in batches for row in batch.to_pylist()]

    try:
        assert offsets(0, 50, 120) == [(0, o) for o in range(50, 120)]
        with pooled_consumer(reader.read_config) as consumer:
            kept = consumer
        # Back to earlier offsets of the same partition, then another partition, then on.
        assert offsets(0, 10, 30) == [(0, o) for o in range(10, 30)]
        assert offsets(1, 100, 200) == [(1, o) for o in range(100, 200)]
        assert offsets(0, 150, 151) == [(0, 150)]
        with pooled_consumer(reader.read_config) as consumer:
            assert consumer is kept
    finally:
        close_idle_consumers()


def test_spark_reads_every_record_once_in_at_least_min_partitions_tasks(
    spark: SparkSession, settings: Settings, tmp_path: Path
) -> None:
    produce(settings, 300)
    query = (
        spark.readStream.format(SOURCE_NAME)
        .options(**source_options(settings, minPartitions="5"))
        .load()
        .select("partition", "offset", spark_partition_id().alias("task"))
        .writeStream.format("memory")
        .queryName("min_partitions")
        .trigger(availableNow=True)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    query.awaitTermination(120)
    rows = spark.table("min_partitions").collect()

    read = Counter((row.partition, row.offset) for row in rows)
    assert read == {(p, o): 1 for p in range(settings.kafka_partitions) for o in range(300)}
    assert len({row.task for row in rows}) >= 5
