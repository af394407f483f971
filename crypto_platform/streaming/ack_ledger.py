"""The producer's ledger: one line per tick the broker acknowledged, written as it goes.

The chaos run's ground truth. The topic read afterwards cannot show what the broker
acknowledged and then lost; this file can. Lines are `identity ingest_time_ms`, buffered
in the producer's callback thread and written in batches, so the hot path stays cheap; a
SIGKILL loses at most the unwritten batch (those ticks are still in the topic).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from crypto_platform.ticks import Tick

BATCH_LINES = 500

__all__ = ["AckLedger", "read_ack_ledger"]


class AckLedger:
    """Appends acknowledged ticks to a file; thread-safe (an old and a new producer may overlap)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def acknowledged(self, tick: Tick, _metadata: object = None) -> None:
        """Record `tick` (a delivery callback: kafka-python passes the record's metadata)."""
        with self._lock:
            self._lines.append(f"{tick.identity} {tick.ingest_time_ms}\n")
            if len(self._lines) >= BATCH_LINES:
                self._write()

    def _write(self) -> None:
        self._file.writelines(self._lines)
        self._file.flush()
        self._lines.clear()

    def close(self) -> None:
        """Write what is buffered and close the file."""
        with self._lock:
            self._write()
            self._file.close()


def read_ack_ledger(lines: Iterable[str]) -> Iterator[tuple[tuple[str, str, int], int]]:
    """(source, symbol, event_time_ms) and ingest time of each complete line.

    A line cut short by a SIGKILL is skipped.
    """
    for line in lines:
        if not line.endswith("\n"):
            continue
        identity, _, ingest = line.rstrip("\n").rpartition(" ")
        source, symbol, event_ms = identity.split(":")
        yield (source, symbol, int(event_ms)), int(ingest)
