"""`streaming_supervisor`: keep every long-running job running, with backoff after failures.

Each tick, for each supervised job: a run queued, starting, started or canceling means
all is well (skip). Otherwise a new run is requested, unless the job's latest runs
failed in a row: then it waits `base * 2^(failures-1)` seconds (capped) after the last
failure. A terminated (CANCELED) run is relaunched at once: turn the sensor off to stop
the pipeline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import dagster as dg

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
BACKOFF_BASE_S = 10.0
BACKOFF_MAX_S = 600.0
HISTORY = 10


def consecutive_failures(instance: dg.DagsterInstance, job_name: str) -> tuple[int, float | None]:
    """How many of the job's latest runs failed in a row, and when the last one ended."""
    runs = instance.get_run_records(dg.RunsFilter(job_name=job_name), limit=HISTORY)
    failures = 0
    last_end: float | None = None
    for record in runs:
        if record.dagster_run.status != dg.DagsterRunStatus.FAILURE:
            break
        failures += 1
        if last_end is None:
            last_end = record.end_time or record.update_timestamp.timestamp()
    return failures, last_end


def backoff_s(failures: int) -> float:
    return min(BACKOFF_BASE_S * 2 ** (failures - 1), BACKOFF_MAX_S) if failures else 0.0


def supervise(
    context: dg.SensorEvaluationContext,
    job_names: Sequence[str],
    not_supervised: Callable[[str], str | None] = lambda _job: None,
) -> dg.SensorResult | dg.SkipReason:
    """The sensor's body, for any list of jobs; `not_supervised(job)` gives a reason to skip."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    launches: dict[str, int] = cursor.get("launches", {})
    requests: list[dg.RunRequest] = []
    reasons: list[str] = []
    for job_name in job_names:
        reason = not_supervised(job_name)
        if reason:
            reasons.append(f"{job_name}: {reason}")
            continue
        active = context.instance.get_runs(
            dg.RunsFilter(job_name=job_name, statuses=ACTIVE), limit=1
        )
        if active:
            reasons.append(
                f"{job_name} is {active[0].status.value.lower()} ({active[0].run_id[:8]})"
            )
            continue
        failures, last_end = consecutive_failures(context.instance, job_name)
        wait = backoff_s(failures)
        if last_end is not None and time.time() < last_end + wait:
            reasons.append(
                f"{job_name} failed {failures} time(s) in a row; relaunch in "
                f"{last_end + wait - time.time():.0f}s"
            )
            continue
        launches[job_name] = launches.get(job_name, 0) + 1
        requests.append(
            dg.RunRequest(
                job_name=job_name,
                run_key=f"{job_name}-{launches[job_name]}",
                tags={"crypto_platform/launched_by": "streaming_supervisor"},
            )
        )
        context.log.info(f"launching {job_name} (launch #{launches[job_name]})")
    new_cursor = json.dumps({"launches": launches}, sort_keys=True)
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=new_cursor)
    return dg.SkipReason("; ".join(reasons))


def build_supervisor(
    jobs: Sequence[dg.JobDefinition | dg.UnresolvedAssetJobDefinition],
    not_supervised: Callable[[str], str | None] = lambda _job: None,
) -> dg.SensorDefinition:
    """The supervisor sensor over `jobs`, on by default."""
    names = [job.name for job in jobs]

    @dg.sensor(
        name="streaming_supervisor",
        jobs=list(jobs),
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Keeps the long-running streaming jobs running; backs off after failures.",
    )
    def streaming_supervisor(
        context: dg.SensorEvaluationContext,
    ) -> dg.SensorResult | dg.SkipReason:
        return supervise(context, names, not_supervised)

    return streaming_supervisor
