"""The data the platform moves: Kafka topics, the MongoDB collection and its settled hours.

Also the one resource per store (Kafka, MongoDB, Cassandra, Spark, the price source).
"""

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
from crypto_platform.defs.streams.sensors import settled_hours

defs = dg.Definitions(
    assets=assets.STREAM_ASSETS,
    asset_checks=STREAM_CHECKS,
    sensors=[settled_hours],
    resources={
        "kafka": KafkaResource(),
        "mongo": MongoResource(),
        "price_source": PriceSourceResource(),
        "cassandra": CassandraResource(),
        "spark": SparkResource(),
    },
)
