"""The streaming assets' freshness, as Dagster's own freshness policy.

A streaming asset (a Kafka topic, the MongoDB collection, the Cassandra tables) is
materialised by its long-running job whenever new data landed, at most once a minute.
The policy fails it when no data has landed for `CRYPTO_CHECK_TICK_MAX_AGE_S`, the limit
of the engine's `tick_freshness` check (which `crypto-platform check` still runs, without
Dagster): since a landing is recorded within a minute, the policy fails at most a minute
after the check would. Dagster's freshness daemon evaluates the policy; no check or sensor is needed
(freshness checks and their sensor are superseded by policies since Dagster 1.12).

A policy is part of the asset's definition, so the setting is the one the definitions
loaded with (`loaded_settings`, read once: a changed limit takes a reload of the code
location), and nowhere else at import.
"""

import datetime as dt

import dagster as dg

from crypto_platform.defs.resources.clients import loaded_settings

# Dagster evaluates freshness windows of a minute at least.
MIN_WINDOW_S = 60.0


def stream_freshness() -> dg.FreshnessPolicy:
    """Fail when no new data landed for CRYPTO_CHECK_TICK_MAX_AGE_S (as the definitions loaded)."""
    max_age_s = max(loaded_settings().check_tick_max_age_s, MIN_WINDOW_S)
    return dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(seconds=max_age_s))
