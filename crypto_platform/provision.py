"""Create what the platform needs on its servers: topics, indexes, keyspace and tables.

Only what is missing is created, so running it again is harmless. `stack up` runs it on
the local servers; `crypto-platform provision` on real ones (docker/compose.yaml's
one-shot services).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from crypto_platform.alerts import store as alerts
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra, mongo
from crypto_platform.streaming import topics

log = logging.getLogger(__name__)


def provision_kafka(settings: Settings) -> str:
    names, changed = topics.ensure_topics(settings)
    applied = (
        f"; retention.ms set to {settings.kafka_retention_ms} on {', '.join(changed)}"
        if changed
        else ""
    )
    return f"kafka: topics {', '.join(names)} ready{applied}"


def provision_mongodb(settings: Settings) -> str:
    client = mongo.connect(settings)
    try:
        indexes = mongo.ensure_indexes(
            mongo.prices_collection(client, settings), ttl_days=settings.mongo_ttl_days
        )
        alerts.ensure_indexes(mongo.alerts_collection(client, settings))
    finally:
        client.close()
    where = f"{settings.mongo_database}.{settings.mongo_collection}"
    return f"mongodb: {where} indexes {', '.join(indexes)}"


def provision_cassandra(settings: Settings) -> str:
    cluster, session = cassandra.connect(settings)
    try:
        tables, rebuilt = cassandra.ensure_schema(
            session,
            settings.cassandra_keyspace,
            settings.cassandra_replication_factor,
            prices_ttl_days=settings.cassandra_prices_ttl_days,
        )
    finally:
        cluster.shutdown()
    migrated = (
        f"; {' and '.join(rebuilt)} rebuilt with a window series per source (an earlier "
        "release mixed sources in one window): run `crypto-platform repair --since ISO "
        "--until ISO` over the history to keep, MongoDB's ticks are recomputed into them"
        if rebuilt
        else ""
    )
    return f"cassandra: keyspace {settings.cassandra_keyspace} tables {', '.join(tables)}{migrated}"


PROVISIONERS: dict[str, Callable[[Settings], str]] = {
    "kafka": provision_kafka,
    "mongodb": provision_mongodb,
    "cassandra": provision_cassandra,
}


def provision(
    settings: Settings,
    systems: Iterable[str] = tuple(PROVISIONERS),
    progress: Callable[[str], None] = log.info,
) -> None:
    """Provision each named system in turn, reporting what is ready."""
    for system in systems:
        progress(PROVISIONERS[system](settings))
