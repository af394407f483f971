"""Statistics: hourly OHLC, jumps and volatility of the stored ticks."""

import dagster as dg

from crypto_platform.defs.statistics.assets import price_jumps, price_statistics, volatility

defs = dg.Definitions(assets=[price_statistics, price_jumps, volatility])
