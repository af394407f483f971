"""The chaos run from start to end.

A stack of its own, the pipeline under steady load, the faults one after another (each
followed by a wait until ticks flow end to end again), a drain, and the tick-by-tick
comparison.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto_platform.chaos import compare, recompute
from crypto_platform.chaos.faults import Fault, Target
from crypto_platform.chaos.pipeline import DRIVER, PRODUCER, SINK, Pipeline
from crypto_platform.chaos.report import FaultRun, results
from crypto_platform.chaos.watch import Watch
from crypto_platform.chaos.windows_check import check_cassandra
from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.stack import LocalStack
from crypto_platform.stack.ephemeral import ephemeral_settings
from crypto_platform.ticks import now_ms

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0  # the Spark job's first batch on a busy 2-core machine
BASELINE_S = 10.0
DRAIN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Plan:
    """What the run does: the load, the faults (each `repeat` times) and the time between."""

    rate: float
    faults: list[Fault]
    phase_s: float
    outage_s: float
    repeat: int = 3

    @property
    def recovery_timeout_s(self) -> float:
        return max(180.0, 3 * self.phase_s)


def run_chaos(base: Settings, plan: Plan, *, keep: bool) -> dict[str, Any]:
    """Run the plan on a fresh stack; return the results (see `report.results`)."""
    data_dir = Path(tempfile.mkdtemp(prefix="crypto-chaos-"))
    settings = ephemeral_settings(data_dir, base.vendor_dir)
    stack = LocalStack(settings)
    pipeline = Pipeline(settings, plan.rate, data_dir / "pipeline")
    stop_supervising = threading.Event()
    supervisor: threading.Thread | None = None
    try:
        log.info("starting a stack of its own in %s", data_dir)
        stack.up(progress=log.info)
        for name in (SINK, DRIVER, PRODUCER):
            pipeline.start(name)
        progress = Watch(settings)
        supervisor = threading.Thread(
            target=pipeline.supervise,
            args=(stop_supervising, lambda: progress.report(lambda: _restarts_line(pipeline))),
            name="chaos-supervisor",
            daemon=True,
        )
        supervisor.start()
        watch = Watch(settings)
        try:
            runs = _apply_faults(stack, pipeline, watch, plan)
            _drain(pipeline, watch, data_dir)
        finally:
            stop_supervising.set()
            supervisor.join()
            watch.close()
            progress.close()
        log.info("comparing, tick by tick: the ledgers, the topic, MongoDB, Cassandra, windows")
        topic = compare.read_topic(settings)
        broker = compare.check_broker(
            compare.read_ledgers(sorted(pipeline.ledger_dir.glob("*.ledger"))), topic
        )
        acknowledged = broker.acknowledged.keys()
        stores = {
            "mongodb": compare.check_store(topic, acknowledged, compare.mongo_copies(settings)),
            "cassandra": compare.check_store(
                topic, acknowledged, compare.cassandra_copies(settings, acknowledged)
            ),
        }
        ticks = recompute.stored_ticks(settings, set(acknowledged))
        expected = recompute.expected(
            ticks, settings.aggregate_window_s, settings.aggregate_slide_s
        )
        windows, latest = check_cassandra(settings, expected)
        return results(
            options={
                "rate": plan.rate,
                "phase_seconds": plan.phase_s,
                "outage_seconds": plan.outage_s,
                "faults": [fault.key for fault in plan.faults],
                "repeat": plan.repeat,
                "window_seconds": settings.aggregate_window_s,
                "slide_seconds": settings.aggregate_slide_s,
            },
            topic=topic,
            broker=broker,
            faults=runs,
            stores=stores,
            windows=windows,
            latest=latest,
            restarts={
                name: {
                    "restarts": c.restarts,
                    "failures": c.failures,
                    "leftovers": c.orphans_killed,
                }
                for name, c in pipeline.components.items()
            },
        )
    finally:
        stop_supervising.set()
        pipeline.shutdown()
        stack.down(progress=log.info)
        if keep:
            log.info("kept the chaos stack's data in %s", data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def _restarts_line(pipeline: Pipeline) -> str:
    return "restarts: " + ", ".join(
        f"{name} {component.restarts}" for name, component in pipeline.components.items()
    )


def _apply_faults(
    stack: LocalStack, pipeline: Pipeline, watch: Watch, plan: Plan
) -> list[FaultRun]:
    started = now_ms()
    log.info("waiting for ticks to flow end to end (the Spark job starts slowly)")
    if watch.wait_flowing(started, START_TIMEOUT_S, lambda: None) is None:
        raise PlatformError(
            f"the pipeline stored nothing end to end within {START_TIMEOUT_S:.0f}s; see the "
            f"logs in {pipeline.run_dir}"
        )
    log.info("flowing after %.0fs; %.0fs of steady load before the first fault",
             (now_ms() - started) / 1000, BASELINE_S)  # fmt: skip
    time.sleep(BASELINE_S)
    target = Target(stack, pipeline, plan.outage_s)
    runs = []
    schedule = [(run, fault) for run in range(1, plan.repeat + 1) for fault in plan.faults]
    for number, (run, fault) in enumerate(schedule, 1):
        label = fault.label(plan.outage_s)
        log.info("fault %d/%d: %s (run %d)", number, len(schedule), label, run)
        injected = now_ms()
        fault.inject(target)
        restored = now_ms()
        recovery = watch.wait_flowing(injected, plan.recovery_timeout_s, lambda: None)
        if recovery is None:
            log.error("%s: no tick stored end to end within %.0fs", label, plan.recovery_timeout_s)
        else:
            log.info("%s: ticks flow end to end again after %.1fs", label, recovery)
        runs.append(FaultRun(fault.key, label, run, injected, restored, recovery))
        time.sleep(max(0.0, injected / 1000 + plan.phase_s - time.time()))
    return runs


def _drain(pipeline: Pipeline, watch: Watch, data_dir: Path) -> None:
    """Stop the producer, let the sink catch up, and let Spark read every last tick."""
    log.info("draining: stopping the producer (it flushes)")
    pipeline.stop(PRODUCER)
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while (lag := watch.sink_lag()) != 0:
        if time.monotonic() > deadline:
            raise PlatformError(
                f"the sink did not catch up within {DRAIN_TIMEOUT_S:.0f}s (lag {lag})"
            )
        time.sleep(1.0)
    pipeline.stop(SINK)
    pipeline.stop(DRIVER)
    log.info("draining: a final available-now pass of the Spark job")
    log_file = data_dir / "pipeline" / "drain.log"
    with log_file.open("ab") as output:
        done = subprocess.run(
            [*pipeline.components[DRIVER].argv, "--available-now"],
            env=pipeline.env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=DRAIN_TIMEOUT_S,
        )
    if done.returncode != 0:
        raise PlatformError(f"the final Spark pass failed: see {log_file}")
