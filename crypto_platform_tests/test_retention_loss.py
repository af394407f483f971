"""Offsets removed by retention before the sink read them: warned, counted, recorded, checked."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from prometheus_client.parser import text_string_to_metric_families

from crypto_platform.settings import Settings
from crypto_platform.storage import mongo
from crypto_platform.streaming.sink import MongoSink, run_sink
from crypto_platform.streaming.topics import admin_client
from crypto_platform_tests.api_helpers import get, running_api
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.streaming_helpers import sink_until_idle, stored_count, wait_for


def produce(settings: Settings, count: int) -> None:
    result = run_cli(settings, "produce", "--source", "simulated", "--symbols", "BTC",
                     "--count", str(count))  # fmt: skip
    assert result.returncode == 0, result.stderr


def set_retention(settings: Settings, retention_ms: int) -> None:
    admin = admin_client(settings)
    try:
        admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    settings.kafka_topic,
                    configs={"retention.ms": str(retention_ms)},
                )
            ]
        )
    finally:
        admin.close()


def beginning(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        partitions = consumer.partitions_for_topic(settings.kafka_topic) or set()
        tps = [TopicPartition(settings.kafka_topic, p) for p in partitions]
        return sum(consumer.beginning_offsets(tps).values())
    finally:
        consumer.close()


def test_a_range_removed_by_retention_is_warned_counted_recorded_and_fails_a_check(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # One coin, so one partition holds every tick.
    produce(settings, 50)
    sink = MongoSink(settings)
    try:
        run_sink(sink, threading.Event(), max_messages=10)  # it reads 10, then stops
    finally:
        sink.close()
    # The sink is stopped while retention removes what it has not read yet.
    set_retention(settings, 1000)
    wait_for(lambda: beginning(settings) == 50, 60, "retention to remove the first 50 offsets")
    set_retention(settings, 3_600_000)
    produce(settings, 20)

    with caplog.at_level(logging.WARNING, logger="crypto_platform.streaming.sink"):
        stats = sink_until_idle(settings)

    assert stats.skipped_offsets == 40 and stats.inserted == 20
    assert stored_count(settings) == 30
    warning = "offsets 10..49 (40) were removed by retention before mongo-sink read them"
    assert any(warning in record.getMessage() for record in caplog.records)
    client = mongo.connect(settings)
    try:
        (loss,) = mongo.data_loss_collection(client, settings).find()
    finally:
        client.close()
    assert (loss["first_offset"], loss["last_offset"], loss["count"]) == (10, 49, 40)
    assert time.time() * 1000 - loss["detected_at_ms"] < 60_000

    with running_api(settings) as api:
        scrape = get(api, "/metrics").text
    samples = {
        (sample.name, tuple(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
    }
    assert samples[("crypto_retention_lost_offsets_total", (("consumer", "mongo-sink"),))] == 40

    checked = run_cli(settings, "check")
    verdicts = {row["check"]: row for row in json.loads(checked.stdout)["checks"]}
    assert checked.returncode == 1
    assert not verdicts["retention_loss"]["passed"]
    assert verdicts["retention_loss"]["metadata"]["lost_offsets"] == 40
