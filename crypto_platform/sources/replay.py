"""Replay a JSONL file of ticks (one written by `crypto-platform record`, say).

Ticks keep their recorded identity, so replaying a file twice stores nothing twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from crypto_platform.errors import ConfigurationError
from crypto_platform.sources.base import PriceSource
from crypto_platform.ticks import InvalidTick, Tick

BATCH = 500


class ReplaySource(PriceSource):
    """Reads `path` line by line (every symbol in it); bad lines are counted and skipped."""

    name = "replay"

    def __init__(self, symbols: list[str], path: Path, rate: float | None = None) -> None:
        super().__init__(symbols)
        if not path.is_file():
            raise ConfigurationError(f"replay file not found: {path} (pass --replay-file)")
        self.path = path
        self.rate = rate

    def batches(self, stop: threading.Event) -> Iterator[list[Tick]]:
        started = time.monotonic()
        sent = 0
        batch: list[Tick] = []
        with self.path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if stop.is_set():
                    return
                if not line.strip():
                    continue
                try:
                    tick = Tick.from_json(line)
                except InvalidTick as error:
                    self.stats.skip(self.name, f"line {number}: {error.reason}")
                    continue
                self.stats.ticks += 1
                batch.append(tick)
                limit = BATCH if self.rate is None else max(1, int(self.rate / 100))
                if len(batch) >= limit:
                    sent += len(batch)
                    yield batch
                    batch = []
                    if self.rate is not None:
                        stop.wait(max(0.0, started + sent / self.rate - time.monotonic()))
        if batch:
            yield batch
