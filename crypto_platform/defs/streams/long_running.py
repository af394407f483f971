"""Run an engine loop inside a Dagster op until the run is terminated, then stop it cleanly.

The loop runs in a worker thread with a stop event; the op's own thread relays its
progress to Dagster. Terminating the run raises `DagsterExecutionInterruptedError` in
the op's thread: it sets the stop event, waits while the loop finishes its batch and
flushes or commits, relays the loop's last reports, and raises the interrupt again. The
op records its last event on the way out (`AssetProgress.flush` in a `finally`), and the
run ends Canceled, Dagster's status for a terminated run: the same for all three streaming
jobs, and no failure to the supervisor (no backoff after a run that ran a while).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import dagster as dg

from crypto_platform.streaming.progress import Snapshot, format_snapshot

T = TypeVar("T")

STREAMING_TAGS = {"crypto_platform/streaming": "true"}
# A run in one of these states holds its job's place: nobody launches another beside it.
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


class AssetProgress:
    """Relay a streaming loop's progress to Dagster without flooding the event log.

    Every report is logged; at most one event per asset each `min_interval_s`: a
    materialisation when `counter` moved since the last one (new data landed, so the
    UI's freshness and downstream automation see it), else an observation carrying the
    same counts, rates and lag (the UI plots both). Idle streams thus add one small event
    a minute, not one every few seconds.
    """

    def __init__(
        self,
        context: dg.OpExecutionContext | dg.AssetExecutionContext,
        keys: Sequence[dg.AssetKey],
        *,
        counter: str = "count",
        static: Mapping[str, str | dg.MetadataValue] | None = None,
        min_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.context, self.keys, self.counter = context, list(keys), counter
        self.static = dict(static or {})
        self.min_interval_s, self.clock = min_interval_s, clock
        self._event_at = -math.inf
        self._materialized_count = 0
        self._pending: Snapshot | None = None

    def __call__(self, snapshot: Snapshot) -> None:
        self.context.log.info(format_snapshot(snapshot))
        self._pending = snapshot
        if self.clock() - self._event_at >= self.min_interval_s:
            self.flush()

    def flush(self) -> None:
        """Record the latest report now if it was held back (call when the loop ends)."""
        snapshot, self._pending = self._pending, None
        if snapshot is None:
            return
        self._event_at = self.clock()
        metadata = {**self.static, **snapshot}
        count = int(snapshot.get(self.counter, 0))
        if count > self._materialized_count:
            self._materialized_count = count
            for key in self.keys:
                self.context.log_event(dg.AssetMaterialization(asset_key=key, metadata=metadata))
        else:
            for key in self.keys:
                self.context.log_event(dg.AssetObservation(asset_key=key, metadata=metadata))


def run_until_terminated(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    loop: Callable[[threading.Event, Callable[[Snapshot], None]], T],
    on_progress: Callable[[Snapshot], None],
    *,
    stop_timeout: float = 60.0,
) -> T:
    """Run `loop(stop, report)` in a thread; relay each report to `on_progress` here.

    Returns what the loop returns when it ends by itself; when the run is terminated,
    raises the interrupt once the loop has stopped cleanly and its last reports are relayed.
    """
    stop = threading.Event()
    # Set by the worker when it has really finished. Not `Thread.join`/`is_alive`: on
    # CPython 3.11 an exception raised into `join` by a signal handler (Dagster's
    # interrupt) marks the thread stopped while it still runs.
    done = threading.Event()
    reports: queue.Queue[Snapshot] = queue.Queue()
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["result"] = loop(stop, reports.put)
        except BaseException as error:  # handed to the op's thread, which raises it
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=work, name="streaming-loop", daemon=True).start()
    interrupted: dg.DagsterExecutionInterruptedError | None = None
    try:
        while not done.wait(timeout=0.5):
            _drain(reports, on_progress)
    except dg.DagsterExecutionInterruptedError as interrupt:
        context.log.info("run terminated: stopping the loop cleanly (flush, commit)")
        stop.set()
        if not done.wait(timeout=stop_timeout):
            context.log.error(f"the loop did not stop within {stop_timeout:.0f}s")
            raise
        interrupted = interrupt
    finally:
        stop.set()
    _drain(reports, on_progress)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    if interrupted is not None:
        context.log.info("loop stopped cleanly; the run ends Canceled")
        raise interrupted
    return outcome["result"]  # type: ignore[return-value]


def _drain(reports: queue.Queue[Snapshot], on_progress: Callable[[Snapshot], None]) -> None:
    while True:
        try:
            on_progress(reports.get_nowait())
        except queue.Empty:
            return
