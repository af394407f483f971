"""`streaming_supervisor`: keep every long-running job running, with backoff when runs keep ending.

Each tick, for each supervised job: a run queued, starting, started or canceling means
all is well (skip). Otherwise a new run is requested, unless the job's latest runs ended
badly in a row (failed, or ended within `QUICK_END_S` of starting, as a replay at the end
of its file does, even with SUCCESS): then it waits `base * 2^(n-1)` seconds (capped) after
the last end. A run that ran for a while and was terminated is relaunched at once: turn
the sensor off to stop the pipeline.

Run keys are derived from the run each launch follows (`<job>:after:<run id>`, or
`<job>:first`), not from a counter: the same situation gives the same key, a new run
gives a new one, and resetting the sensor's cursor cannot make a key collide.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg

from crypto_platform.defs.streams.long_running import ACTIVE

BACKOFF_BASE_S = 10.0
BACKOFF_MAX_S = 600.0
# A streaming run that ends sooner than this after its start did not really run.
QUICK_END_S = 60.0
HISTORY = 10


@dataclass(frozen=True)
class History:
    """The job's latest run, and how many of its latest runs ended badly in a row."""

    latest_run_id: str | None
    bad_ends: int
    last_end: float | None


def _ended_badly(record: dg.RunRecord) -> bool:
    if record.dagster_run.status == dg.DagsterRunStatus.FAILURE:
        return True
    if record.start_time is None or record.end_time is None:
        return True  # ended without ever starting
    return record.end_time - record.start_time < QUICK_END_S


def history(instance: dg.DagsterInstance, job_name: str) -> History:
    """Read the job's latest runs (newest first) from the instance."""
    records = instance.get_run_records(dg.RunsFilter(job_name=job_name), limit=HISTORY)
    bad_ends = 0
    last_end: float | None = None
    for record in records:
        if not _ended_badly(record):
            break
        bad_ends += 1
        if last_end is None:
            last_end = record.end_time or record.update_timestamp.timestamp()
    latest = records[0].dagster_run.run_id if records else None
    return History(latest, bad_ends, last_end)


def backoff_s(bad_ends: int) -> float:
    return min(BACKOFF_BASE_S * 2 ** (bad_ends - 1), BACKOFF_MAX_S) if bad_ends else 0.0


def run_key(job_name: str, latest_run_id: str | None) -> str:
    """Unique per launch and deterministic: the run this launch follows names it."""
    return f"{job_name}:after:{latest_run_id}" if latest_run_id else f"{job_name}:first"


def supervise(
    context: dg.SensorEvaluationContext,
    job_names: Sequence[str],
    not_supervised: Callable[[str], str | None] = lambda _job: None,
) -> dg.SensorResult | dg.SkipReason:
    """The sensor's body, for any list of jobs; `not_supervised(job)` gives a reason to skip."""
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
        past = history(context.instance, job_name)
        wait = backoff_s(past.bad_ends)
        if past.last_end is not None and time.time() < past.last_end + wait:
            reasons.append(
                f"{job_name} failed or ended within {QUICK_END_S:.0f}s of starting "
                f"{past.bad_ends} time(s) in a row; relaunch in "
                f"{past.last_end + wait - time.time():.0f}s"
            )
            continue
        key = run_key(job_name, past.latest_run_id)
        requests.append(
            dg.RunRequest(
                job_name=job_name,
                run_key=key,
                tags={"crypto_platform/launched_by": "streaming_supervisor"},
            )
        )
        context.log.info(f"launching {job_name} ({key})")
    if requests:
        return dg.SensorResult(run_requests=requests)
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
        description="Keeps the long-running streaming jobs running; backs off when runs "
        "fail or end soon after starting.",
    )
    def streaming_supervisor(
        context: dg.SensorEvaluationContext,
    ) -> dg.SensorResult | dg.SkipReason:
        return supervise(context, names, not_supervised)

    return streaming_supervisor
