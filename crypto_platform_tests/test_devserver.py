"""`crypto-platform dev`, what `make run` runs.

A run killed with SIGKILL is relaunched with nothing lost; one Ctrl-C ends the runs cleanly
and stops everything.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
from dagster_graphql import DagsterGraphQLClient

from crypto_platform.settings import Settings
from crypto_platform.stack.ephemeral import free_ports
from crypto_platform.stack.process import session_processes
from crypto_platform.ticks import Tick
from crypto_platform_tests.conftest import REPO
from crypto_platform_tests.spark_helpers import count_rows
from crypto_platform_tests.streaming_helpers import read_topic, stored_count, stored_ids, wait_for

# `crypto-platform dev` runs a real `dagster dev`.
pytestmark = pytest.mark.dagster_dev

STREAMING = {"ingest_prices", "persist_prices", "aggregate_prices"}
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


def test_one_ctrl_c_ends_the_runs_cleanly_and_stops_everything(
    settings: Settings, tmp_path: Path
) -> None:
    dagster_port, api_port = free_ports(2)
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        **settings.as_env(),
        "CRYPTO_DATA_DIR": str(data_dir),
        "CRYPTO_SOURCE": "simulated",
    }
    log = tmp_path / "dev.log"
    launcher = start_dev(env, log, dagster_port, api_port)
    try:
        # Open the instance once dagster dev has created its storage, never beside it.
        wait_for(lambda: "Dagster UI on" in log.read_text(), 180, "the Dagster UI")
        instance = dg.DagsterInstance.from_config(str(data_dir / "dagster"))
        wait_for(
            lambda: runs_by_status(instance, dg.DagsterRunStatus.STARTED) == STREAMING,
            240,
            "the three streaming runs",
        )
        wait_for(lambda: stored_count(settings) > 0, 60, "ticks in MongoDB")
        wait_for(lambda: count_rows(settings, "latest_prices") > 0, 180, "Spark's first batch")

        # SIGKILL of the sink's run process: Dagster records the run as failed, the supervisor
        # starts another, and every tick in the topic ends up in MongoDB exactly once.
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

        # The pool keeps a second aggregation waiting: two runs never share a checkpoint.
        client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_port)
        second = client.submit_job_execution("aggregate_prices")
        time.sleep(10)
        assert client.get_run_status(second) == dg.DagsterRunStatus.QUEUED

        started = everything_started_by(psutil.Process(launcher.pid))
        took = ctrl_c(launcher)
    finally:
        leave_nothing_behind(launcher)
    said = log.read_text()

    assert took < 15, said
    assert launcher.returncode == 0, said
    assert "Traceback" not in said
    assert [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    runs = instance.get_runs()
    assert {run.job_name for run in runs} >= STREAMING
    failures = [run.run_id for run in runs if run.status == dg.DagsterRunStatus.FAILURE]
    assert failures == [killed.run_id]
    # Nothing is left started; a run the automation queued just before stays queued for the
    # next start, as Dagster keeps its queue.
    unfinished = [run for run in runs if not run.is_finished]
    assert all(run.status == dg.DagsterRunStatus.QUEUED for run in unfinished), [
        (r.job_name, r.status) for r in unfinished
    ]

    # Ctrl-C paused the supervisor; the next start switches it back on.
    assert not supervisor_running(instance)
    again = start_dev(env, tmp_path / "dev-again.log", dagster_port, api_port)
    try:
        wait_for(
            lambda: "Dagster UI on" in (tmp_path / "dev-again.log").read_text(), 180, "restart"
        )
        assert supervisor_running(instance)
    finally:
        leave_nothing_behind(again)
