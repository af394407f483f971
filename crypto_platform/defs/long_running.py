"""Run an engine loop inside a Dagster op until the run is terminated, then stop it cleanly.

The loop runs in a worker thread with a stop event; the op's own thread relays its
progress to Dagster. Terminating the run raises `DagsterExecutionInterruptedError` in
the op's thread: it sets the stop event, waits while the loop finishes its batch and
flushes or commits, and returns: stopping is the normal end of a streaming op, not a
failure of its step.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from crypto_platform.streaming.progress import Snapshot

T = TypeVar("T")

STREAMING_TAGS = {"crypto_platform/streaming": "true"}


def run_until_terminated(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    loop: Callable[[threading.Event, Callable[[Snapshot], None]], T],
    on_progress: Callable[[Snapshot], None],
    *,
    stop_timeout: float = 60.0,
) -> T | None:
    """Run `loop(stop, report)` in a thread; relay each report to `on_progress` here."""
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
    try:
        while not done.wait(timeout=0.5):
            _drain(reports, on_progress)
    except dg.DagsterExecutionInterruptedError:
        context.log.info("run terminated: stopping the loop cleanly (flush, commit)")
        stop.set()
        if not done.wait(timeout=stop_timeout):
            context.log.error(f"the loop did not stop within {stop_timeout:.0f}s")
            raise
        if "error" not in outcome:
            context.log.info("loop stopped cleanly")
    finally:
        stop.set()
    _drain(reports, on_progress)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("result")  # type: ignore[return-value]


def _drain(reports: queue.Queue[Snapshot], on_progress: Callable[[Snapshot], None]) -> None:
    while True:
        try:
            on_progress(reports.get_nowait())
        except queue.Empty:
            return
