"""A tick the broker refuses is an error, counted and raised, never only logged."""

from __future__ import annotations

from crypto_platform.settings import Settings
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.streaming_helpers import create_topic_with_max_message_bytes


def test_ticks_the_broker_refuses_fail_the_producer_with_a_count(settings: Settings) -> None:
    refusing = settings.model_copy(update={"kafka_topic": f"{settings.kafka_topic}.tiny"})
    create_topic_with_max_message_bytes(settings, refusing.kafka_topic, 60)

    result = run_cli(refusing, "produce", "--source", "simulated", "--count", "20", timeout=180)

    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert "ticks were not delivered to" in result.stderr
    assert "produced 20 ticks" not in result.stdout
