"""The Spark Kafka source never skips offsets removed by retention without a word."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from pyspark.sql.streaming.datasource import ReadAllAvailable

from crypto_platform.settings import Settings
from crypto_platform.spark.kafka_source import DataLoss, KafkaStreamReader, consumer_config
from crypto_platform_tests.streaming_helpers import wait_for


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
