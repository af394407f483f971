"""`crypto-platform dlq replay`: valid dead letters back to the tick topic, each one once."""

from __future__ import annotations

import json

from kafka import KafkaProducer

from crypto_platform.settings import Settings
from crypto_platform.streaming.dead_letters import (
    ORIGIN_OFFSET,
    ORIGIN_PARTITION,
    ORIGIN_TOPIC,
    REASON,
    TRUNCATED,
)
from crypto_platform.streaming.dlq_replay import replay_group
from crypto_platform.streaming.topics import admin_client
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.streaming_helpers import stored_ids, topic_size, wait_for


def dead_letter(producer: KafkaProducer, settings: Settings, value: bytes, *extra: tuple) -> None:
    """A dead letter as the sink writes one (here: rejected by an older, wrong rule)."""
    headers = [
        (REASON, b"symbol: String should match pattern"),
        (ORIGIN_TOPIC, settings.kafka_topic.encode()),
        (ORIGIN_PARTITION, b"0"),
        (ORIGIN_OFFSET, b"7"),
        *extra,
    ]
    producer.send(settings.kafka_dlq_topic, key=b"BTC", value=value, headers=headers)


def test_replay_republishes_valid_dead_letters_once(settings: Settings) -> None:
    now = now_ms()
    ticks = [
        Tick(
            source="replay", symbol="BTC", price=1.0 + i, event_time_ms=now + i, ingest_time_ms=now
        )
        for i in range(2)
    ]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for tick in ticks:
        dead_letter(producer, settings, tick.to_json())
    dead_letter(producer, settings, b'{"symbol": "BTC"}')
    dead_letter(producer, settings, ticks[0].to_json()[:10], (TRUNCATED, b"5000"))
    producer.flush()
    producer.close()

    first = run_cli(settings, "dlq", "replay")
    assert first.returncode == 0, first.stderr
    assert "replayed 2 dead letters" in first.stdout
    assert "1 still invalid, 1 truncated" in first.stdout
    assert "Field required" in first.stdout  # the reason it is still invalid

    second = run_cli(settings, "dlq", "replay")
    assert "replayed 0 dead letters" in second.stdout
    assert topic_size(settings, settings.kafka_topic) == 2

    # Replayed again from scratch (its group reset): the ticks keep their identity.
    admin = admin_client(settings)
    try:
        admin.delete_groups([replay_group(settings)])
    finally:
        admin.close()
    assert "replayed 2 dead letters" in run_cli(settings, "dlq", "replay").stdout
    assert run_cli(settings, "consume", "--until-idle", "3").returncode == 0
    assert sorted(stored_ids(settings)) == sorted(tick.identity for tick in ticks)


def test_a_dead_letter_still_invalid_stays_replayable_for_a_later_replay(
    settings: Settings,
) -> None:
    now = now_ms()
    valid = Tick(source="replay", symbol="ETH", price=2.0, event_time_ms=now, ingest_time_ms=now)
    # Invalid for another few seconds: more than 5 minutes ahead of the clock that reads it.
    ahead = now + 5 * 60_000 + 4_000
    fields = {"source": "replay", "symbol": "BTC", "price": 1.0}
    soon = json.dumps({**fields, "event_time_ms": ahead, "ingest_time_ms": ahead}).encode()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    dead_letter(producer, settings, soon)
    dead_letter(producer, settings, valid.to_json())
    producer.flush()
    producer.close()

    first = run_cli(settings, "dlq", "replay")
    assert "replayed 1 dead letters" in first.stdout and "1 still invalid" in first.stdout
    assert run_cli(settings, "consume", "--until-idle", "3").returncode == 0
    wait_for(lambda: now_ms() > ahead - 5 * 60_000, 30, "the tick to be no longer ahead")

    second = run_cli(settings, "dlq", "replay")

    assert "replayed 1 dead letters" in second.stdout, second.stdout  # the one now valid
    assert "1 already stored (replayed before)" in second.stdout  # not sent twice
    assert topic_size(settings, settings.kafka_topic) == 2
    assert "replayed 0 dead letters" in run_cli(settings, "dlq", "replay").stdout
