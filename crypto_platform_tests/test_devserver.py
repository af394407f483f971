"""`crypto-platform dev`, what `make run` runs, through a day of faults, end to end.

Under the real `dagster dev` it starts, with a fake Binance (24h ticker and 1-second klines
from one price path, the weight header, one 429): a run killed with SIGKILL is relaunched
with nothing lost; the producer stops for 3 minutes of the exchange's time and resumes
(the fake exchange's clock runs behind and catches up, so the suite waits 20 s, not 3
min); ticks 15 minutes late and a `dlq replay` land in the hour before. From then on
nothing is called by hand: the gap sensor backfills and repairs each gap, the late-tick
sensor repairs the late hour and the automation runs that hour's statistics again. One
Ctrl-C ends the runs cleanly and stops everything. At the end every window equals a
computation from scratch over MongoDB, Cassandra holds MongoDB's ticks hour by hour, and
a second backfill and repair change nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import httpx
import psutil
import pytest
from dagster_graphql import DagsterGraphQLClient
from kafka import KafkaProducer
from pyspark.sql import SparkSession

from crypto_platform.chaos.recompute import expected
from crypto_platform.chaos.windows_check import check_cassandra
from crypto_platform.completeness.history.binance import KLINES
from crypto_platform.completeness.ledger import find_gaps
from crypto_platform.defs.completeness.assets import HOURLY_COMPLETENESS, REPAIRED_HOURS
from crypto_platform.defs.completeness.jobs import hour_key
from crypto_platform.defs.statistics.assets import PRICE_STATISTICS
from crypto_platform.defs.streams.assets import KAFKA_PRICES, MONGO_PRICES
from crypto_platform.devserver import Webserver
from crypto_platform.settings import Settings
from crypto_platform.spark.job import run_aggregation
from crypto_platform.stack.ephemeral import free_ports
from crypto_platform.stack.process import session_processes
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.conftest import REPO, run_cli
from crypto_platform_tests.proof_helpers import (
    HOUR_MS,
    MINUTE_MS,
    SYMBOLS,
    TICKER,
    cassandra_per_hour,
    day,
    fake_exchange,
    history,
    iso,
    late,
    mongo_ticks,
    per_hour,
)
from crypto_platform_tests.spark_helpers import count_rows, publish
from crypto_platform_tests.streaming_helpers import (
    committed_total,
    read_topic,
    stored_ids,
    topic_size,
    wait_for,
)
from crypto_platform_tests.test_dlq_replay import dead_letter

# `crypto-platform dev` runs a real `dagster dev`.
pytestmark = pytest.mark.dagster_dev

STREAMING = {"ingest_prices", "persist_prices", "aggregate_prices"}
OUTAGE_MS = 180_000  # of the exchange's time
PAUSE_S = 20.0  # of the machine's: the exchange's clock catches up the rest
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
STARTED_PID = re.compile(r"Started process for run \(pid: (\d+)\)")


def runs_by_status(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> set[str]:
    return {run.job_name for run in instance.get_runs(dg.RunsFilter(statuses=[status]))}


def everything_started_by(launcher: psutil.Process) -> list[psutil.Process]:
    """The launcher's children and every process of their sessions (run workers, Spark JVM)."""
    children = launcher.children(recursive=True)
    sessions = {os.getsid(child.pid) for child in children}
    return list({p.pid: p for p in [*children, *session_processes(sessions)]}.values())


def start_dev(env: dict[str, str], log: Path, *ports: int) -> subprocess.Popen:
    dagster_port, api_port = ports
    return subprocess.Popen(
        [sys.executable, "-m", "crypto_platform", "dev",
         "--dagster-port", str(dagster_port), "--api-port", str(api_port)],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,  # a terminal of its own: its group is what Ctrl-C hits
    )  # fmt: skip


def ctrl_c(launcher: subprocess.Popen) -> float:
    """Ctrl-C to the launcher's terminal; how long until it exited."""
    os.killpg(launcher.pid, signal.SIGINT)
    began = time.monotonic()
    launcher.wait(timeout=60)
    return time.monotonic() - began


def run_process_id(instance: dg.DagsterInstance, run_id: str) -> int:
    """The pid Dagster logged when it started the run's process."""
    logs = instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    (pid,) = [found[1] for event in logs if (found := STARTED_PID.match(event.message))]
    return int(pid)


def run_status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run.status


def published_ids(settings: Settings) -> set[str]:
    """The identity of every tick the broker holds (each acknowledged to the producer)."""
    return {
        Tick.from_json(record.value).identity
        for record in read_topic(settings, settings.kafka_topic)
    }


def leave_nothing_behind(launcher: subprocess.Popen) -> None:
    """Stop a launcher the test left running, and kill what outlives it.

    A failed wait must not leave run workers or a Spark JVM (sessions of their own) writing
    to the shared stack for the tests after this one.
    """
    if launcher.poll() is not None:
        return
    started = everything_started_by(psutil.Process(launcher.pid))
    with contextlib.suppress(subprocess.TimeoutExpired):
        ctrl_c(launcher)
    for process in started:
        with contextlib.suppress(psutil.Error):
            process.kill()
    if launcher.poll() is None:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()


def supervisor_running(instance: dg.DagsterInstance) -> bool:
    (state,) = [s for s in instance.all_instigator_state() if s.name == "streaming_supervisor"]
    return state.status.value in {"RUNNING", "DECLARED_IN_CODE"}


def materialized_at(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> float:
    """When the partition was last materialised (0: never)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return records[0].timestamp if records else 0.0


def test_a_day_of_faults_heals_by_itself_and_one_ctrl_c_stops_everything(
    settings: Settings, spark: SparkSession, tmp_path: Path
) -> None:
    began = now_ms()
    exchange_now = began - (OUTAGE_MS - int(PAUSE_S * 1000))
    hour = exchange_now - exchange_now % HOUR_MS
    # The late ticks fall in the hour before (closed: its partitions exist), at least 15
    # minutes behind the newest tick.
    late_at = min(exchange_now - 15 * MINUTE_MS, hour - 2 * MINUTE_MS)
    since = late_at - 5 * MINUTE_MS
    publish(settings, history(since, exchange_now))  # what the producer sent before
    dagster_port, api_port = free_ports(2)
    data_dir = tmp_path / "data"
    log = tmp_path / "dev.log"
    with fake_exchange(behind_ms=began - exchange_now) as exchange:
        env = {
            **os.environ,
            **settings.as_env(),
            "CRYPTO_DATA_DIR": str(data_dir),
            "CRYPTO_SOURCE": "binance",
            "CRYPTO_BINANCE_BASE_URL": exchange.api.url,
            "CRYPTO_SYMBOLS": ",".join(SYMBOLS),
            "CRYPTO_SPARK_CONTINUOUS": "true",
        }
        launcher = start_dev(env, log, dagster_port, api_port)
        try:
            # Open the instance once dagster dev has created its storage, never beside it.
            wait_for(lambda: "Dagster UI on" in log.read_text(), 180, "the Dagster UI")
            instance = dg.DagsterInstance.from_config(str(data_dir / "dagster"))
            web = Webserver(dagster_port)  # what `dev` itself asks Dagster through
            client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_port)
            wait_for(
                lambda: runs_by_status(instance, dg.DagsterRunStatus.STARTED) == STREAMING,
                240,
                "the three streaming runs",
            )
            wait_for(lambda: len(exchange.api.hits(TICKER)) > 0, 60, "the producer's polls")
            wait_for(lambda: count_rows(settings, "latest_prices") > 0, 180, "Spark's first batch")

            # SIGKILL of the sink's run process: Dagster records the run as failed, the
            # supervisor starts another, and every tick in the topic ends up in MongoDB once.
            (killed,) = instance.get_runs(
                dg.RunsFilter(job_name="persist_prices", statuses=[dg.DagsterRunStatus.STARTED])
            )
            os.kill(run_process_id(instance, killed.run_id), signal.SIGKILL)
            failed = dg.DagsterRunStatus.FAILURE
            wait_for(lambda: run_status(instance, killed.run_id) == failed, 60, "the failed run")
            wait_for(
                lambda: runs_by_status(instance, dg.DagsterRunStatus.STARTED) == STREAMING,
                120,
                "the supervisor's relaunch",
            )
            published = published_ids(settings)
            wait_for(lambda: published <= set(stored_ids(settings)), 120, "the sink to catch up")

            # The outage: the producer is stopped (its supervisor switched off, as in the UI).
            web.set_sensor(running=False)
            (producing,) = instance.get_runs(
                dg.RunsFilter(job_name="ingest_prices", statuses=[dg.DagsterRunStatus.STARTED])
            )
            client.terminate_run(producing.run_id)
            paused = time.monotonic()
            wait_for(lambda: run_status(instance, producing.run_id).name == "CANCELED", 60,
                     "the producer to end cleanly")  # fmt: skip
            # Meanwhile ticks 15 minutes late, and dead letters a replay brings back.
            publish(settings, late(late_at, 3))
            producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
            for tick in late(late_at + 30_000, 2):
                dead_letter(producer, settings, tick.to_json())
            producer.close()
            replay = run_cli(settings, "dlq", "replay")
            assert "replayed 4 dead letters" in replay.stdout, replay.stderr
            # The pool keeps a second aggregation waiting: two runs never share a checkpoint.
            second = client.submit_job_execution("aggregate_prices")
            time.sleep(max(10.0, PAUSE_S - (time.monotonic() - paused)))
            assert client.get_run_status(second) == dg.DagsterRunStatus.QUEUED
            exchange.behind_ms = 0  # 3 minutes of the exchange's time have passed
            web.set_sensor(running=True)

            # From here on, the automation alone.
            late_hour = hour_key(late_at - late_at % HOUR_MS)

            def healed() -> bool:
                """Gaps filled, the late hour redone after its repair, only streaming busy."""
                gaps = find_gaps(settings, since, now_ms() - MINUTE_MS)
                repaired = materialized_at(instance, REPAIRED_HOURS, late_hour)
                busy = instance.get_runs(dg.RunsFilter(statuses=UNFINISHED))
                return (
                    any(gap.end_ms - gap.start_ms >= OUTAGE_MS for gap in gaps)
                    and all(gap.status == "repaired" for gap in gaps)
                    and 0 < repaired < materialized_at(instance, PRICE_STATISTICS, late_hour)
                    and repaired < materialized_at(instance, HOURLY_COMPLETENESS, late_hour)
                    and {run.job_name for run in busy} <= STREAMING
                )

            wait_for(healed, 420, "the automation to repair every gap and the late hour")
            seen = httpx.get(f"http://127.0.0.1:{api_port}/gaps/BTC",
                             params={"since": iso(since)}, timeout=10).json()  # fmt: skip
            assert seen and {gap["status"] for gap in seen} == {"repaired"}

            started = everything_started_by(psutil.Process(launcher.pid))
            took = ctrl_c(launcher)
        finally:
            leave_nothing_behind(launcher)
        klines = exchange.api.hits(KLINES)
    said = log.read_text()

    # One Ctrl-C stopped everything, cleanly.
    assert took < 15, said
    assert launcher.returncode == 0, said
    assert "Traceback" not in said
    assert [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    runs = instance.get_runs()
    failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
    assert [r.run_id for r in failed if r.job_name in STREAMING] == [killed.run_id]
    # Other failures: an hour's completeness fails while the hour has an open gap (the late
    # hour's passed once repaired, above).
    # Nothing is left started; a run queued before stays queued for the next start.
    unfinished = [run for run in runs if not run.is_finished]
    assert all(run.status == dg.DagsterRunStatus.QUEUED for run in unfinished), [
        (r.job_name, r.status) for r in unfinished
    ]
    # Every other streaming run that ended was terminated (the producer's for the outage, all
    # three at the Ctrl-C): each of the three jobs ended its runs the same way, Canceled.
    ended = [
        r for r in runs if r.job_name in STREAMING and r.is_finished and r.run_id != killed.run_id
    ]
    assert {r.job_name for r in ended} == STREAMING
    assert {r.status for r in ended} == {dg.DagsterRunStatus.CANCELED}, [
        (r.job_name, r.status) for r in ended
    ]
    assert not supervisor_running(instance)  # Ctrl-C paused it
    produced = instance.get_latest_materialization_event(KAFKA_PRICES)
    stored = instance.get_latest_materialization_event(MONGO_PRICES)
    assert produced is not None and stored is not None
    assert {"source", "rate_per_s", "skipped", "delivery_failures"} <= set(
        produced.asset_materialization.metadata
    )
    assert {"lag", "inserted", "dead_lettered", "write_ms_p50", "write_ms_p99"} <= set(
        stored.asset_materialization.metadata
    )
    # The gaps were filled from 1-second klines, past one 429.
    assert klines[0].query["interval"] == ["1s"] and len(klines) >= 2

    # What Kafka still holds reaches both stores, as at the next start.
    assert committed_total(settings) <= topic_size(settings, settings.kafka_topic)
    assert run_cli(settings, "consume", "--until-idle", "3").returncode == 0
    settled = settings.model_copy(update={"data_dir": data_dir})
    run_aggregation(spark, settled, threading.Event(), available_now=True)

    ticks = mongo_ticks(settings)
    last_tick = int(ticks["event_time_ms"].max())
    gaps = find_gaps(settings, since, last_tick)
    assert gaps and {gap.status for gap in gaps} == {"repaired"}
    # Every window, and each coin's latest rows, equal a computation from scratch over
    # MongoDB (tick counts exactly, means within 1e-9 relative).
    want = expected(ticks, settings.aggregate_window_s, settings.aggregate_slide_s)
    windows, latest = check_cassandra(settings, want)
    assert windows.checked > 0 and windows.wrong == [], windows.summary()
    assert latest.wrong == [], latest.summary()
    # MongoDB and prices_by_symbol hold the same ticks, hour by hour.
    days = sorted({day(int(ms)) for ms in ticks["event_time_ms"]})
    assert cassandra_per_hour(settings, days) == per_hour(ticks)
    # Backfill and repair again: nothing is sent, no window changes.
    span = ("--since", iso(since), "--until", iso(last_tick))
    again = run_cli(settings, "backfill", *span)
    assert again.returncode == 0 and '"sent": 0' in again.stdout, again.stderr
    assert run_cli(settings, "repair", *span).returncode == 0
    assert check_cassandra(settings, want)[0].wrong == []
    assert len(mongo_ticks(settings)) == len(ticks)

    # The next start switches the supervisor Ctrl-C paused back on.
    again_log = tmp_path / "dev-again.log"
    restarted = start_dev(env, again_log, dagster_port, api_port)
    try:
        wait_for(lambda: "Dagster UI on" in again_log.read_text(), 180, "restart")
        assert supervisor_running(instance)
    finally:
        leave_nothing_behind(restarted)
