"""Resources: one per external system, shared by every domain's assets, checks and sensors."""

import dagster as dg

from crypto_platform.defs.resources.clients import (
    CassandraResource,
    KafkaResource,
    MongoResource,
    PriceSourceResource,
    SparkResource,
)

defs = dg.Definitions(
    resources={
        "kafka": KafkaResource(),
        "mongo": MongoResource(),
        "price_source": PriceSourceResource(),
        "cassandra": CassandraResource(),
        "spark": SparkResource(),
    },
)
