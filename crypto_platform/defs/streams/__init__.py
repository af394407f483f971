"""The data the platform moves: Kafka topics, the MongoDB collection and its settled hours."""

import dagster as dg

from crypto_platform.defs.streams import assets
from crypto_platform.defs.streams.sensors import settled_hours

defs = dg.Definitions(assets=assets.STREAM_ASSETS, sensors=[settled_hours])
