"""`aggregate_prices_catch_up`: available-now runs, for when continuous mode is off.

Continuous mode is the setting the definitions loaded with (`loaded_settings`), not read
again at each evaluation: a changed CRYPTO_SPARK_CONTINUOUS takes a reload of the code
location.
"""

import dagster as dg

from crypto_platform.defs.analytics.assets import aggregate_prices
from crypto_platform.defs.resources.clients import loaded_settings
from crypto_platform.defs.streams.long_running import ACTIVE


@dg.schedule(
    job=aggregate_prices,
    cron_schedule="*/5 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes, catch up with Kafka and stop; only when "
    "CRYPTO_SPARK_CONTINUOUS is false (otherwise the supervisor runs it continuously) "
    "and no aggregate_prices run is active (two runs never share a checkpoint).",
)
def aggregate_prices_catch_up(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    if loaded_settings().spark_continuous:
        return dg.SkipReason("continuous mode is on: streaming_supervisor keeps it running")
    active = context.instance.get_runs(
        dg.RunsFilter(job_name=aggregate_prices.name, statuses=ACTIVE), limit=1
    )
    if active:
        return dg.SkipReason(
            f"aggregate_prices run {active[0].run_id[:8]} is {active[0].status.value.lower()}"
        )
    return dg.RunRequest(
        run_key=context.scheduled_execution_time.isoformat(),
        run_config=dg.RunConfig(ops={"spark_aggregation": {"config": {"available_now": True}}}),
        tags={"crypto_platform/streaming": "false"},
    )
