"""One background writer that stores batches in order and tells which offsets are safe.

The sink's consumer thread polls and parses the next batch while this thread writes the
previous one. Batches are written one at a time, in the order handed over; the offsets of
a batch become available to commit only after its write succeeded. kafka-python's
consumer is not thread-safe, so committing stays with the consumer thread.

Stopping is bounded, whether or not the caller's stop event is ever set (an error may end
the consumer's loop first): `stop(timeout)` ends a write's retries after `timeout`, and
its batch is never committed, so it is redelivered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from kafka import OffsetAndMetadata, TopicPartition

Offsets = dict[TopicPartition, OffsetAndMetadata]
Item = TypeVar("Item")
# The store's sleep between retries: waits up to the given seconds, True once it must stop.
Pause = Callable[[float], bool]
# After `stop`'s timeout, how long a write already sent may still take (it cannot be
# interrupted); the daemon thread is then left behind, its batch uncommitted.
IN_FLIGHT_S = 5.0


class OrderedWriter(Generic[Item]):
    """At most one batch waiting and one being written (backpressure on the consumer)."""

    def __init__(self, store: Callable[[list[Item], Pause], None]) -> None:
        self._store = store
        self._condition = threading.Condition()
        self._waiting: tuple[list[Item], Offsets] | None = None
        self._busy = False
        self._written: Offsets = {}
        self._error: BaseException | None = None
        self._closing = False
        self._halt = threading.Event()
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> None:
        """Start the thread (once); `stop` ends retries of a write that cannot succeed."""
        if self._thread is None:
            self._stop = stop
            self._thread = threading.Thread(target=self._run, name="mongo-writer", daemon=True)
            self._thread.start()

    def submit(self, documents: list[Item], offsets: Offsets) -> None:
        """Queue a batch, waiting while one is already queued; raise the writer's error."""
        with self._condition:
            while self._waiting is not None and self._error is None:
                self._condition.wait(0.1)
            self._raise_error()
            self._waiting = (documents, offsets)
            self._condition.notify_all()

    def take_written(self) -> Offsets:
        """Offsets of every batch stored since the last call; raise the writer's error."""
        with self._condition:
            self._raise_error()
            written, self._written = self._written, {}
            return written

    def wait_idle(self) -> None:
        """Block until nothing is queued or being written; raise the writer's error."""
        with self._condition:
            while (self._waiting is not None or self._busy) and self._error is None:
                self._condition.wait(0.1)
            self._raise_error()

    def stop(self, timeout: float) -> None:
        """Write what was handed over for up to `timeout` s, then end the retries."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._halt.set()
            self._thread.join(IN_FLIGHT_S)

    def _pause(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True as soon as the caller's stop or `stop()` ends retries."""
        assert self._stop is not None
        deadline = time.monotonic() + seconds
        while not (self._stop.is_set() or self._halt.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._halt.wait(min(left, 0.1))
        return True

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._waiting is None and not self._closing:
                    self._condition.wait(0.1)
                if self._waiting is None or self._halt.is_set():
                    return
                documents, offsets = self._waiting
                self._waiting, self._busy = None, True
                self._condition.notify_all()
            try:
                if documents:
                    self._store(documents, self._pause)
            except BaseException as error:  # handed to the consumer thread
                with self._condition:
                    self._error, self._busy = error, False
                    self._condition.notify_all()
                return
            with self._condition:
                self._written.update(offsets)
                self._busy = False
                self._condition.notify_all()
