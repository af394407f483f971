"""Checks on the Cassandra tables: positive prices, agreement with MongoDB, ordered means."""

from crypto_platform.defs.analytics.assets import (
    CASSANDRA_AGGREGATES_BY_SYMBOL,
    CASSANDRA_PRICES_BY_SYMBOL,
)
from crypto_platform.defs.asset_checks import checks_for

ANALYTICS_CHECKS = checks_for(CASSANDRA_PRICES_BY_SYMBOL, CASSANDRA_AGGREGATES_BY_SYMBOL)
