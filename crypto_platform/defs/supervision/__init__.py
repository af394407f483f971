"""Supervision: the sensor that keeps the long-running streaming jobs alive."""

import dagster as dg

from crypto_platform.defs.analytics.assets import aggregate_prices
from crypto_platform.defs.ingestion.jobs import ingest_prices, persist_prices
from crypto_platform.defs.resources.clients import loaded_settings
from crypto_platform.defs.supervision.sensors import build_supervisor

SUPERVISED_JOBS = [ingest_prices, persist_prices, aggregate_prices]


def not_supervised(job_name: str) -> str | None:
    """Why a job is left alone (continuous mode as the definitions loaded it, not re-read)."""
    if job_name == aggregate_prices.name and not loaded_settings().spark_continuous:
        return "continuous mode is off (CRYPTO_SPARK_CONTINUOUS): the schedule runs it"
    return None


defs = dg.Definitions(sensors=[build_supervisor(SUPERVISED_JOBS, not_supervised)])
