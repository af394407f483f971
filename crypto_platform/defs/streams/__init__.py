"""The data the platform moves: Kafka topics, the MongoDB collection, the Cassandra tables."""

import dagster as dg

from crypto_platform.defs.streams import assets

defs = dg.Definitions(assets=assets.STREAM_ASSETS)
