"""The completeness automation's sensors: gaps to backfill and repair, late hours to repair.

`gap_sensor`: each tick it detects the gaps of the last `LOOKBACK_MS` (the ledger records
them), and requests a `gap_repair` run for each gap that has closed and is still open: a
tick came after it (its end is that tick's time, before the evaluation began; an open
head gap ends at the detection's now). One run key per gap and attempt. A gap whose last
run failed waits `BACKOFF_BASE_S * 2^(failures - 1)` seconds (capped) before its next
attempt; at most `MAX_REQUESTS` runs are requested per tick. The run queue runs one gap
of a (source, coin) at a time and at most three in all (dagster.yaml).

`late_tick_sensor`: the hours the MongoDB sink recorded as having received ticks behind
Spark's watermark (`late_hours`) are repaired (a `repair_hours` run of that hour's
partition of `cassandra/repaired_hours`) once the hour has closed (its partition exists)
and Spark's windows over those ticks are final: the watermark, a window's length and a
minute past the newest late tick's event time. The run key holds when the hour's last
late tick came, so each new late arrival repairs the hour once more.

Both read their settings once per process (`loaded_settings`, the `mongo` resource's
fields applied), not again at each evaluation.
"""

import time

import dagster as dg

from crypto_platform.completeness.gaps import Gap
from crypto_platform.completeness.ledger import find_gaps
from crypto_platform.defs.completeness.jobs import (
    GAP_TAG,
    SERIES_TAG,
    gap_repair,
    hour_key,
    repair_hours,
)
from crypto_platform.defs.resources.clients import MongoResource, loaded_settings
from crypto_platform.storage import mongo as mongo_store
from crypto_platform.ticks import now_ms

LOOKBACK_MS = 6 * 3_600_000
MAX_REQUESTS = 4
BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 1800.0


def _failures(context: dg.SensorEvaluationContext, gap: Gap) -> tuple[int, float | None]:
    """Runs of this gap that failed (newest first, in a row) and when the last one ended."""
    records = context.instance.get_run_records(
        dg.RunsFilter(job_name=gap_repair.name, tags={GAP_TAG: gap.key}), limit=10
    )
    failures, last_end = 0, None
    for record in records:
        if record.dagster_run.status != dg.DagsterRunStatus.FAILURE:
            break
        failures += 1
        last_end = last_end or record.end_time
    return failures, last_end


def request_repairs(
    context: dg.SensorEvaluationContext, gaps: list[Gap], began_ms: int
) -> dg.SensorResult | dg.SkipReason:
    """Run requests for the closed, open gaps (the body, apart from reading the ledger).

    `began_ms`: when the evaluation began, before the gaps were detected.
    """
    requests, waiting = [], []
    for gap in gaps:
        if gap.status != "open" or gap.end_ms >= began_ms:  # still open at the head
            continue
        failures, last_end = _failures(context, gap)
        wait = min(BACKOFF_BASE_S * 2 ** (failures - 1), BACKOFF_MAX_S) if failures else 0.0
        if last_end is not None and time.time() < last_end + wait:
            waiting.append(f"{gap.key} (retry in {last_end + wait - time.time():.0f}s)")
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{gap.key}:{failures}",
                run_config={
                    "ops": {
                        "repair_gap": {
                            "config": {
                                "source": gap.source,
                                "symbol": gap.symbol,
                                "start_ms": gap.start_ms,
                                "end_ms": gap.end_ms,
                            }
                        }
                    }
                },
                tags={GAP_TAG: gap.key, SERIES_TAG: f"{gap.source}:{gap.symbol}"},
            )
        )
        if len(requests) == MAX_REQUESTS:
            break
    if requests:
        return dg.SensorResult(run_requests=requests)
    return dg.SkipReason(
        f"no closed open gap to repair; waiting: {', '.join(waiting)}" if waiting else
        "no closed open gap to repair"
    )  # fmt: skip


@dg.sensor(
    job=gap_repair,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Detects gaps in the last hours and launches their backfill and repair.",
)
def gap_sensor(
    context: dg.SensorEvaluationContext,
    mongo: MongoResource,
) -> dg.SensorResult | dg.SkipReason:
    settings = loaded_settings(mongo)
    now = now_ms()
    return request_repairs(context, find_gaps(settings, now - LOOKBACK_MS, now), now)


HOUR_MS = 3_600_000
SETTLE_MS = 60_000


def _final_at(doc: dict, final_ms: int) -> int:
    """When a `late_hours` record's hour can be repaired: closed, its windows final.

    Its late ticks' windows are final `final_ms` after the newest of them; the candles a
    repair left open are closed in the stream at `candles_close_ms`. Records of an earlier
    release have no `newest_late_ms`: their hour's end stands for it.
    """
    hour_end = int(doc["_id"]) + HOUR_MS
    candles = int(doc.get("candles_close_ms", 0)) + SETTLE_MS
    return max(hour_end, int(doc.get("newest_late_ms", hour_end)) + final_ms, candles)


@dg.sensor(
    job=repair_hours,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Repairs from MongoDB the hours that received ticks behind Spark's watermark.",
)
def late_tick_sensor(
    context: dg.SensorEvaluationContext,
    mongo: MongoResource,
) -> dg.SensorResult:
    """Reads only what changed: hours whose last late tick came after the cursor."""
    settings = loaded_settings(mongo)
    final_ms = (settings.aggregate_watermark_s + settings.aggregate_window_s) * 1000 + SETTLE_MS
    now = now_ms()
    cursor = int(context.cursor or 0)
    client = mongo_store.connect(settings)
    try:
        changed = list(
            mongo_store.late_hours_collection(client, settings).find(
                {"last_seen_ms": {"$gt": cursor}}
            )
        )
    finally:
        client.close()
    settled = [doc for doc in changed if _final_at(doc, final_ms) <= now]
    waiting = [int(doc["last_seen_ms"]) for doc in changed if _final_at(doc, final_ms) > now]
    # The cursor passes every hour handled, never one still waiting for its windows.
    seen = [int(doc["last_seen_ms"]) for doc in changed]
    next_cursor = min(waiting) - 1 if waiting else max(seen, default=cursor)
    requests = [
        dg.RunRequest(
            run_key=f"late:{int(doc['_id'])}:{int(doc['last_seen_ms'])}",
            partition_key=hour_key(int(doc["_id"])),
        )
        for doc in settled
    ]
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=str(next_cursor))
    return dg.SensorResult(
        skip_reason=f"{len(waiting)} hours with late ticks wait for their windows to be final"
        if waiting
        else "no new late ticks",
        cursor=str(next_cursor),
    )
