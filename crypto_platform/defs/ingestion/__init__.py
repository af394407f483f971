"""Getting ticks in: the producer and the MongoDB sink as long-running Dagster jobs."""

import dagster as dg

from crypto_platform.defs.ingestion.jobs import ingest_prices, persist_prices

defs = dg.Definitions(jobs=[ingest_prices, persist_prices])
