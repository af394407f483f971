"""A tick the broker refuses is an error, counted and raised, never only logged."""

from __future__ import annotations

from kafka.admin import KafkaAdminClient, NewTopic

from crypto_platform.settings import Settings
from crypto_platform_tests.conftest import run_cli


def test_ticks_the_broker_refuses_fail_the_producer_with_a_count(settings: Settings) -> None:
    refusing = settings.model_copy(update={"kafka_topic": f"{settings.kafka_topic}.tiny"})
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        admin.create_topics(
            [NewTopic(refusing.kafka_topic, 1, 1, topic_configs={"max.message.bytes": "60"})]
        )
    finally:
        admin.close()

    result = run_cli(refusing, "produce", "--source", "simulated", "--count", "20", timeout=180)

    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert "ticks were not delivered to" in result.stderr
    assert "produced 20 ticks" not in result.stdout
