"""Supervision: the sensor that keeps the long-running streaming jobs alive."""

import dagster as dg

from crypto_platform.defs.ingestion.jobs import ingest_prices, persist_prices
from crypto_platform.defs.supervision.sensors import build_supervisor

SUPERVISED_JOBS = [ingest_prices, persist_prices]

defs = dg.Definitions(sensors=[build_supervisor(SUPERVISED_JOBS)])
