"""Checks on the stream assets: MongoDB prices (freshness, positive, complete) and the DLQ."""

from crypto_platform.defs.asset_checks import checks_for
from crypto_platform.defs.streams.assets import KAFKA_PRICES_DLQ, MONGO_PRICES

STREAM_CHECKS = checks_for(MONGO_PRICES, KAFKA_PRICES_DLQ)
