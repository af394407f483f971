"""Dead letters are acknowledged before the sink commits, even those too large to copy."""

from __future__ import annotations

import threading

from kafka import KafkaProducer

from crypto_platform.settings import Settings
from crypto_platform.streaming.dead_letters import REASON, TRUNCATED, TRUNCATED_BYTES
from crypto_platform.streaming.sink import MongoSink, run_sink
from crypto_platform_tests.streaming_helpers import create_topic_with_max_message_bytes, read_topic


def test_a_dead_letter_too_large_for_the_dlq_is_stored_truncated_with_the_reason(
    settings: Settings,
) -> None:
    small_dlq = settings.model_copy(update={"kafka_dlq_topic": f"{settings.kafka_dlq_topic}.small"})
    create_topic_with_max_message_bytes(settings, small_dlq.kafka_dlq_topic, 4000)
    poison = b"{not json " + b"x" * 10_000
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    producer.send(settings.kafka_topic, key=b"BTC", value=poison, partition=0)
    producer.flush()
    producer.close()

    sink = MongoSink(small_dlq)
    try:
        stats = run_sink(sink, threading.Event(), until_idle=2)
    finally:
        sink.close()

    assert stats.dead_lettered == 1
    letters = read_topic(settings, small_dlq.kafka_dlq_topic)
    assert len(letters) == 1
    headers = dict(letters[0].headers)
    assert letters[0].value == poison[:TRUNCATED_BYTES]
    assert headers[TRUNCATED] == str(len(poison)).encode()
    reason = headers[REASON].decode()
    assert "JSON" in reason and f"truncated to its first {TRUNCATED_BYTES}" in reason
