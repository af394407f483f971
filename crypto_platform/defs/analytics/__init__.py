"""Analytics: the Spark aggregation into Cassandra, continuous or scheduled."""

import dagster as dg

from crypto_platform.defs.analytics.assets import aggregate_prices, spark_aggregation
from crypto_platform.defs.analytics.schedules import aggregate_prices_catch_up

defs = dg.Definitions(
    assets=[spark_aggregation],
    jobs=[aggregate_prices],
    schedules=[aggregate_prices_catch_up],
)
