"""`aggregate_prices_catch_up`: available-now runs, for when continuous mode is off."""

import dagster as dg

from crypto_platform.defs.analytics.assets import aggregate_prices
from crypto_platform.settings import load_settings


@dg.schedule(
    job=aggregate_prices,
    cron_schedule="*/5 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes, catch up with Kafka and stop; only when "
    "CRYPTO_SPARK_CONTINUOUS is false (otherwise the supervisor runs it continuously).",
)
def aggregate_prices_catch_up(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    if load_settings().spark_continuous:
        return dg.SkipReason("continuous mode is on: streaming_supervisor keeps it running")
    return dg.RunRequest(
        run_key=context.scheduled_execution_time.isoformat(),
        run_config=dg.RunConfig(ops={"spark_aggregation": {"config": {"available_now": True}}}),
        tags={"crypto_platform/streaming": "false"},
    )
