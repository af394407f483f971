"""Producer and MongoDB sink on the real stack: exactly once in effect, through any crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kafka import KafkaProducer

from crypto_platform.settings import Settings
from crypto_platform.stack import LocalStack
from crypto_platform.streaming.dead_letters import ORIGIN_OFFSET, ORIGIN_PARTITION, REASON
from crypto_platform_tests.conftest import REPO, run_cli
from crypto_platform_tests.streaming_helpers import (
    read_topic,
    sink_until_idle,
    stored_count,
    stored_ids,
    topic_size,
    wait_for,
)


def start_cli(settings: Settings, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "crypto_platform", *args],
        env={**os.environ, **settings.as_env()},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def produce(settings: Settings, count: int) -> None:
    result = run_cli(settings, "produce", "--source", "simulated", "--count", str(count))
    assert result.returncode == 0, result.stderr
    assert f"produced {count} ticks" in result.stdout


def test_ten_thousand_ticks_give_exactly_ten_thousand_documents(settings: Settings) -> None:
    produce(settings, 10_000)

    result = run_cli(settings, "consume", "--until-idle", "3")

    assert result.returncode == 0, result.stderr
    assert stored_count(settings) == 10_000
    assert "consumed 10000: 10000 stored, 0 already stored, 0 to" in result.stdout
    topics = run_cli(settings, "topics").stdout
    assert f"{settings.kafka_consumer_group} " in topics and " / 0" in topics


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(settings: Settings) -> None:
    produce(settings, 20_000)
    expected = {record.value for record in read_topic(settings, settings.kafka_topic)}
    consumer = start_cli(settings, "consume", "--until-idle", "30")
    wait_for(lambda: stored_count(settings) >= 3_000, 60, "the first documents")

    consumer.send_signal(signal.SIGKILL)
    consumer.wait(10)
    assert stored_count(settings) < 20_000

    result = run_cli(settings, "consume", "--until-idle", "3")
    assert result.returncode == 0, result.stderr
    ids = stored_ids(settings)
    assert len(ids) == len(set(ids)) == 20_000
    assert len(expected) == 20_000


def test_mongodb_down_mid_stream_loses_nothing(stack: LocalStack, settings: Settings) -> None:
    produce(settings, 20_000)
    consumer = start_cli(settings, "consume", "--until-idle", "5")
    wait_for(lambda: stored_count(settings) >= 2_000, 60, "the first documents")
    mongo = next(server for server in stack.servers if server.name == "mongodb")

    mongo.process.stop()
    time.sleep(4)
    assert consumer.poll() is None  # still running, waiting for MongoDB
    stack.up()

    _, err = consumer.communicate(timeout=120)
    assert consumer.returncode == 0, err
    assert "MongoDB write failed" in err and "nothing committed" in err
    assert stored_count(settings) == 20_000


def test_poison_messages_go_to_the_dlq_and_the_stream_goes_on(settings: Settings) -> None:
    produce(settings, 100)
    poison = [
        b"{broken json",
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"schema_version":1,"source":"binance","symbol":"BTC","price":-3,'
        b'"event_time_ms":1,"ingest_time_ms":1}',
    ]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for value in poison:
        producer.send(settings.kafka_topic, key=b"BTC", value=value, partition=0)
    producer.flush()
    producer.close()
    produce(settings, 100)

    stats = sink_until_idle(settings)

    assert stored_count(settings) == 200
    assert (stats.consumed, stats.inserted, stats.dead_lettered) == (203, 200, 3)
    letters = read_topic(settings, settings.kafka_dlq_topic)
    assert sorted(letter.value for letter in letters) == sorted(poison)
    for letter in letters:
        headers = dict(letter.headers)
        assert headers[REASON]
        assert headers[ORIGIN_PARTITION] == b"0"
        assert int(headers[ORIGIN_OFFSET]) >= 0
    reasons = {dict(letter.headers)[REASON].decode() for letter in letters}
    assert any("price" in reason for reason in reasons)


def test_replaying_a_recording_twice_stores_each_tick_once(
    settings: Settings, tmp_path: Path
) -> None:
    recording = tmp_path / "ticks.jsonl"
    result = run_cli(
        settings, "record", "--source", "simulated", "--count", "500", "--out", str(recording)
    )
    assert result.returncode == 0, result.stderr
    assert len(recording.read_text().splitlines()) == 500

    for _ in range(2):
        replay = run_cli(settings, "produce", "--source", "replay", "--replay-file", str(recording))
        assert replay.returncode == 0, replay.stderr
    consumed = run_cli(settings, "consume", "--until-idle", "3")

    assert "consumed 1000: 500 stored, 500 already stored" in consumed.stdout
    assert stored_count(settings) == 500


def test_sigterm_flushes_the_producer(settings: Settings) -> None:
    producer = start_cli(settings, "produce", "--source", "simulated", "--rate", "2000")
    time.sleep(3)

    producer.send_signal(signal.SIGTERM)
    out, err = producer.communicate(timeout=30)

    assert producer.returncode == 0, err
    sent = int(out.split("produced ")[1].split()[0])
    assert sent > 1000
    assert topic_size(settings, settings.kafka_topic) == sent


def test_server_down_is_a_clear_error(settings: Settings) -> None:
    down = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})

    result = run_cli(down, "produce", "--source", "simulated", "--count", "1", timeout=120)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Kafka" in result.stderr and "127.0.0.1:1" in result.stderr
