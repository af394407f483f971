"""gap_repair_s: from the end of a producer outage to every window over it repaired, unattended.

The platform runs as `make run` runs it (`crypto-platform dev`: Dagster's supervisor keeps
the producer, the sink and Spark running; the automation's sensors on) against the
measured stack, the simulator at 100 ticks/s. The producer is stopped for 3 minutes (its
supervisor switched off and its run terminated, as from the UI), then switched back on.
The clock starts when ticks flow again (a tick newer than the outage in MongoDB) and stops
when the gap sensor's runs have backfilled every coin's gap and repaired its windows (the
ledger says repaired, no `gap_repair` run left unfinished). The windows over the gap are
then compared with a computation from scratch over MongoDB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from crypto_platform.chaos.recompute import expected
from crypto_platform.chaos.windows_check import compare_windows, stored_windows
from crypto_platform.completeness.ledger import find_gaps
from crypto_platform.devserver import Webserver, dagster_home
from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.stack.ephemeral import free_ports
from crypto_platform.stack.process import stop_sessions
from crypto_platform.storage import cassandra, cassandra_queries, mongo
from crypto_platform.ticks import now_ms

RATE = 100.0  # ticks per second, all coins
OUTAGE_S = 180.0
STREAMING = {"ingest_prices", "persist_prices", "aggregate_prices"}
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
TARGET_S = 120.0


def gap_repair_seconds(
    settings: Settings, say: Callable[[str], None], *, outage_s: float = OUTAGE_S
) -> dict[str, Any]:
    """Run the platform, stop its producer for `outage_s`, time the automation's repair."""
    with tempfile.TemporaryDirectory(prefix="crypto-bench-gap-") as scratch:
        platform = settings.model_copy(update={"data_dir": Path(scratch)})
        dagster_port, api_port = free_ports(2)
        env = {
            **os.environ,
            **platform.as_env(),
            "CRYPTO_SOURCE": "simulated",
            "CRYPTO_SIMULATED_RATE": str(RATE),
            "CRYPTO_SPARK_CONTINUOUS": "true",
        }
        log = Path(scratch) / "dev.log"
        with log.open("wb") as output:
            dev = subprocess.Popen(
                [sys.executable, "-m", "crypto_platform", "dev",
                 "--dagster-port", str(dagster_port), "--api-port", str(api_port)],
                env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            return _measure(platform, Webserver(dagster_port), log, outage_s, say)
        finally:
            dev.send_signal(signal.SIGINT)
            stop_sessions([dev.pid], grace=60.0)


def _measure(
    settings: Settings, web: Webserver, log: Path, outage_s: float, say: Callable[[str], None]
) -> dict[str, Any]:
    _wait(lambda: web.ready() and bool(web.sensor_running()), 240, "Dagster", log)
    instance = dg.DagsterInstance.from_config(str(dagster_home(settings)))
    _wait(lambda: set(_started(instance)) == STREAMING, 300, "the streaming runs", log)
    _wait(lambda: _latest_count(settings) > 0, 300, "Spark's first windows", log)
    say(f"platform up; stopping the producer for {outage_s:.0f} s")
    web.set_sensor(running=False)
    producing = _started(instance)["ingest_prices"]
    web.terminate([producing.run_id])
    _wait(lambda: "ingest_prices" not in _started(instance), 60, "the producer to stop", log)
    stopped_ms = _newest_ms(settings)
    time.sleep(outage_s)
    web.set_sensor(running=True)
    resume_after_ms = stopped_ms + int(outage_s * 1000)
    _wait(lambda: _newest_ms(settings) > resume_after_ms, 180, "the producer again", log)
    resumed = time.monotonic()
    say("ticks flow again; waiting for the automation to repair the gap")
    since = stopped_ms - 60_000
    outage = [dg.RunsFilter(job_name="gap_repair", statuses=UNFINISHED)]

    def repaired() -> bool:
        gaps = [g for g in find_gaps(settings, since, now_ms() - 60_000) if g.start_ms >= since]
        big = [g for g in gaps if g.end_ms - g.start_ms >= outage_s * 1000]
        return (
            len(big) >= len(settings.symbols)
            and all(g.status == "repaired" for g in gaps)
            and not instance.get_runs(outage[0])
        )

    _wait(repaired, 900, "the automation's repair", log)
    seconds = time.monotonic() - resumed
    gaps = [g for g in find_gaps(settings, since, now_ms() - 60_000) if g.start_ms >= since]
    checked, wrong = _windows_over(settings, min(g.start_ms for g in gaps),
                                   max(g.end_ms for g in gaps))  # fmt: skip
    return {
        "rate_per_s": RATE,
        "outage_s": outage_s,
        "gaps": len(gaps),
        "ticks_backfilled": _backfilled(settings, since),
        "seconds": round(seconds, 1),
        "windows_checked": checked,
        "windows_wrong": wrong,
    }


def _windows_over(settings: Settings, start_ms: int, end_ms: int) -> tuple[int, int]:
    """The windows over [start, end) that ended by `end`: stored against MongoDB, recomputed.

    Those reaching past the gap's end still take live ticks, so Spark and MongoDB may
    disagree on them for a moment.
    """
    window_ms = settings.aggregate_window_s * 1000
    low, high = start_ms - window_ms, end_ms + window_ms  # every tick such a window holds
    with mongo.connect(settings) as client:
        docs = mongo.prices_collection(client, settings).find(
            {"event_time_ms": {"$gte": low, "$lt": high}},
            {"_id": 0, "source": 1, "symbol": 1, "event_time_ms": 1, "price": 1},
        )
        ticks = pd.DataFrame(list(docs))
    every = expected(ticks, settings.aggregate_window_s, settings.aggregate_slide_s).windows
    ended = end_ms - window_ms  # the last start of a window over the gap that ended by then
    want = {key: value for key, value in every.items() if low < key[2] * 1000 <= ended}
    cluster, session = cassandra.connect(settings)
    try:
        stored = stored_windows(session, settings, {(k[0], k[1]) for k in want}, low, high)
    finally:
        cluster.shutdown()
    check = compare_windows(want, {key: stored[key] for key in want.keys() & stored.keys()})
    return check.checked, len(check.wrong)


def _started(instance: dg.DagsterInstance) -> dict[str, dg.DagsterRun]:
    runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    return {run.job_name: run for run in runs}


def _newest_ms(settings: Settings) -> int:
    """The newest event time MongoDB holds (one read of the event_time index)."""
    with mongo.connect(settings) as client:
        newest = mongo.prices_collection(client, settings).find_one(
            {}, {"event_time_ms": 1}, sort=[("event_time_ms", -1)]
        )
    return int(newest["event_time_ms"]) if newest else 0


def _backfilled(settings: Settings, since_ms: int) -> int:
    with mongo.connect(settings) as client:
        return mongo.prices_collection(client, settings).count_documents(
            {"backfilled": True, "event_time_ms": {"$gte": since_ms}}
        )


def _latest_count(settings: Settings) -> int:
    cluster, session = cassandra.connect(settings)
    try:
        return len(cassandra_queries.latest_prices(session, settings.cassandra_keyspace))
    finally:
        cluster.shutdown()


def _wait(condition: Callable[[], bool], timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            raise PlatformError(f"gap repair bench: no {what} within {timeout_s:.0f}s\n{tail}")
        time.sleep(1.0)
