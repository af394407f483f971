"""Retention settings: Kafka topics' retention, a MongoDB TTL index, a Cassandra default TTL."""

from __future__ import annotations

from kafka.admin import ConfigResource, ConfigResourceType

from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra, mongo
from crypto_platform.streaming.topics import admin_client
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.streaming_helpers import wait_for

DAY_MS = 86_400_000


def provision(settings: Settings, system: str, **variables: str) -> str:
    result = run_cli(settings, "provision", system, env_override=variables)
    assert result.returncode == 0, result.stderr
    return result.stdout


def tick(event_time_ms: int) -> Tick:
    return Tick(
        source="simulated",
        symbol="BTC",
        price=1.0,
        event_time_ms=event_time_ms,
        ingest_time_ms=event_time_ms,
    )


def test_mongo_ttl_expires_old_ticks_and_can_be_changed_or_removed(settings: Settings) -> None:
    old, new = tick(now_ms() - 3 * DAY_MS), tick(now_ms())
    client = mongo.connect(settings)
    try:
        prices = mongo.prices_collection(client, settings)
        prices.insert_many([old.to_document(), new.to_document()])

        provision(settings, "mongodb", CRYPTO_MONGO_TTL_DAYS="1")
        assert prices.index_information()[mongo.TTL_INDEX]["expireAfterSeconds"] == 86_400
        # MongoDB's TTL monitor (and the local server's) runs once a minute.
        wait_for(
            lambda: prices.find_one({"_id": old.identity}) is None, 150, "the old tick to expire"
        )
        assert prices.find_one({"_id": new.identity}) is not None

        provision(settings, "mongodb", CRYPTO_MONGO_TTL_DAYS="30")
        assert prices.index_information()[mongo.TTL_INDEX]["expireAfterSeconds"] == 30 * 86_400
        provision(settings, "mongodb")  # off again: the index goes, the ticks stay
        assert mongo.TTL_INDEX not in prices.index_information()
        assert prices.find_one({"_id": new.identity}) is not None
    finally:
        client.close()


def test_cassandra_prices_ttl_is_set_changed_and_removed(settings: Settings) -> None:
    cluster, session = cassandra.connect(settings)
    table = f"{settings.cassandra_keyspace}.prices_by_symbol"

    def insert_and_read_ttl(symbol: str) -> int | None:
        session.execute(
            f"INSERT INTO {table} (symbol, day, event_time, source, price) "
            "VALUES (%s, '2026-11-23', 0, 'simulated', 1.0)",
            [symbol],
        )
        row = session.execute(
            f"SELECT TTL(price) AS ttl FROM {table} WHERE symbol = %s AND day = '2026-11-23'",
            [symbol],
        ).one()
        return row.ttl

    try:
        provision(settings, "cassandra", CRYPTO_CASSANDRA_PRICES_TTL_DAYS="2")
        assert 0 < insert_and_read_ttl("BTC") <= 2 * 86_400
        provision(settings, "cassandra", CRYPTO_CASSANDRA_PRICES_TTL_DAYS="2")  # idempotent
        provision(settings, "cassandra", CRYPTO_CASSANDRA_PRICES_TTL_DAYS="7")
        assert 2 * 86_400 < insert_and_read_ttl("ETH") <= 7 * 86_400
        provision(settings, "cassandra")
        assert insert_and_read_ttl("SOL") is None
    finally:
        cluster.shutdown()


def test_a_changed_kafka_retention_reaches_the_existing_topics(settings: Settings) -> None:
    topics = [settings.kafka_topic, settings.kafka_dlq_topic]

    def retention() -> dict[str, str]:
        admin = admin_client(settings)
        try:
            described = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics],
                config_filter="all",
            )["topic"]
        finally:
            admin.close()
        return {name: described[name]["retention.ms"]["value"] for name in topics}

    assert set(retention().values()) == {str(settings.kafka_retention_ms)}

    said = provision(settings, "kafka", CRYPTO_KAFKA_RETENTION_MS="60000")

    assert retention() == dict.fromkeys(topics, "60000")
    assert f"retention.ms set to 60000 on {', '.join(topics)}" in said
    assert "retention.ms set" not in provision(settings, "kafka", CRYPTO_KAFKA_RETENTION_MS="60000")


def test_provision_replaces_an_earlier_release_s_coin_index(settings: Settings) -> None:
    client = mongo.connect(settings)
    try:
        prices = mongo.prices_collection(client, settings)
        prices.create_index([("symbol", 1), ("event_time_ms", -1)], name="symbol_event_time")

        provision(settings, "mongodb")

        indexes = prices.index_information()
        assert "symbol_event_time" not in indexes
        assert indexes["symbol_source_event_time"]["key"] == [
            ("symbol", 1), ("source", 1), ("event_time_ms", -1)
        ]  # fmt: skip
    finally:
        client.close()
