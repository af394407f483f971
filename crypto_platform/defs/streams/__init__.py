"""The data the platform moves: Kafka topics, the MongoDB collection, the Cassandra tables."""

import dagster as dg

from crypto_platform.defs.streams import assets
from crypto_platform.defs.streams.checks import STREAM_CHECKS
from crypto_platform.defs.streams.resources import (
    CassandraResource,
    KafkaResource,
    MongoResource,
    PriceSourceResource,
    SparkResource,
)

defs = dg.Definitions(
    assets=assets.STREAM_ASSETS,
    asset_checks=STREAM_CHECKS,
    resources={
        "kafka": KafkaResource(),
        "mongo": MongoResource(),
        "price_source": PriceSourceResource(),
        "cassandra": CassandraResource(),
        "spark": SparkResource(),
    },
)
