"""The bench cleans up after each step: its own topics go, another bench's stay."""

from __future__ import annotations

from crypto_platform.bench.fixtures import drop_topics, fresh
from crypto_platform.settings import Settings
from crypto_platform.streaming.topics import admin_client, ensure_topics


def topics(settings: Settings) -> set[str]:
    admin = admin_client(settings)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_a_bench_drops_its_own_topics_and_leaves_another_benchs(stack_settings: Settings) -> None:
    another_bench = stack_settings.model_copy(
        update={"kafka_topic": "bench-0ther1-producer_x", "kafka_dlq_topic": "bench-0ther1-x.dlq"}
    )
    ensure_topics(another_bench)
    ours = fresh(stack_settings, "producer")
    assert {ours.kafka_topic, ours.kafka_dlq_topic} <= topics(stack_settings)

    drop_topics(stack_settings)

    left = topics(stack_settings)
    assert not {ours.kafka_topic, ours.kafka_dlq_topic} & left
    assert {another_bench.kafka_topic, another_bench.kafka_dlq_topic} <= left
