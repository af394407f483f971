"""When MongoDB committed each insert, read from a change stream (its `wallTime`).

`handed_at_ms` is stamped when the sink hands a batch to MongoDB, so it leaves the write
out; stamping after the acknowledged write would cost a second write per batch. A change
stream reports each committed insert with the server's commit wall-clock time, which
puts the write inside the latency figure at no cost to the sink.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from pymongo.collection import Collection

ONLY_INSERTS: list[dict[str, Any]] = [
    {"$match": {"operationType": "insert"}},
    {"$project": {"wallTime": 1, "fullDocument.ingest_time_ms": 1}},
]


class CommitLatencies:
    """Ingest time to commit time (ms) of every insert into `collection` while open."""

    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self.latencies_ms: list[float] = []
        self._thread = threading.Thread(target=self._watch, name="commit-times", daemon=True)

    def __enter__(self) -> CommitLatencies:
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise TimeoutError("the change stream did not open within 30 s")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self._failure is not None and error is None:
            raise self._failure

    def wait_for(self, count: int, timeout_s: float) -> None:
        """Let the stream catch up with `count` inserts (or give up after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while len(self.latencies_ms) < count and time.monotonic() < deadline:
            time.sleep(0.1)

    def _watch(self) -> None:
        try:
            with self._collection.watch(ONLY_INSERTS, max_await_time_ms=200) as stream:
                self._ready.set()
                while not self._stop.is_set():
                    change = stream.try_next()
                    if change is not None:
                        committed_ms = change["wallTime"].timestamp() * 1000
                        ingested_ms = change["fullDocument"]["ingest_time_ms"]
                        self.latencies_ms.append(committed_ms - ingested_ms)
        except BaseException as error:  # handed to the measuring thread by __exit__
            self._failure = error
            self._ready.set()
