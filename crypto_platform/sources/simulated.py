"""Offline prices: seeded geometric Brownian motion per coin, at any rate.

The price path is deterministic for a seed; event times follow the wall clock, strictly
increasing per symbol, so identities never collide even at full speed. At full speed event
time runs ahead of the clock (one millisecond per tick and symbol): a high-water mark kept
in a small file (`state_file`) makes a restarted source start after every event time the
last run may have used, and the source waits rather than run more than `MAX_AHEAD_MS` ahead
(the tick rule refuses event times far ahead of ingest time).

No file is a fresh start. A file that cannot be read or kept, or holds no mark, is an
error, never a mark of 0: starting from 0 would give new ticks the identities of the last
run's, which MongoDB then keeps as already stored, the new prices lost.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from crypto_platform.errors import PlatformError
from crypto_platform.sources.base import PriceSource
from crypto_platform.ticks import MAX_EVENT_AHEAD_MS, Tick, now_ms

# Realistic start prices (USD) and annualised volatilities.
START_PRICES = {
    "BTC": (65_000.0, 0.60), "ETH": (3_200.0, 0.75), "SOL": (150.0, 1.00),
    "BNB": (580.0, 0.65), "XRP": (0.55, 0.90), "ADA": (0.45, 0.95),
    "DOGE": (0.12, 1.10), "AVAX": (35.0, 1.00), "DOT": (7.0, 0.90), "LINK": (15.0, 0.90),
}  # fmt: skip
SECONDS_PER_YEAR = 365 * 24 * 3600
BATCH_AT_FULL_SPEED = 500
MAX_AHEAD_MS = MAX_EVENT_AHEAD_MS // 2
RESERVE_MS = 5_000  # event time reserved in the state file at a time


class HighWaterMarkError(PlatformError):
    """The high-water-mark file cannot be read or kept: the source would reuse identities."""


def _start(symbol: str) -> tuple[float, float]:
    if symbol in START_PRICES:
        return START_PRICES[symbol]
    digest = int(hashlib.sha256(symbol.encode()).hexdigest()[:8], 16)
    return 1.0 + digest % 10_000 / 100.0, 0.8


class SimulatedSource(PriceSource):
    """GBM ticks for each symbol in turn; `rate` ticks per second in all, or full speed."""

    name = "simulated"

    def __init__(
        self,
        symbols: list[str],
        *,
        seed: int = 42,
        rate: float | None = None,
        step_seconds: float = 1.0,
        state_file: Path | None = None,
    ) -> None:
        super().__init__(symbols)
        self.rate = rate
        self._random = random.Random(seed)
        self._prices = {symbol: _start(symbol)[0] for symbol in symbols}
        self._sigma = {symbol: _start(symbol)[1] for symbol in symbols}
        self._dt = step_seconds / SECONDS_PER_YEAR
        self._state_file = state_file
        self._reserved = _read_mark(state_file)
        self._last_ms = dict.fromkeys(symbols, self._reserved)

    def next_tick(self, symbol: str) -> Tick:
        """Advance `symbol` one step and return its tick."""
        sigma = self._sigma[symbol]
        shock = self._random.gauss(0.0, 1.0)
        drift = -0.5 * sigma * sigma * self._dt
        self._prices[symbol] *= math.exp(drift + sigma * math.sqrt(self._dt) * shock)
        now = now_ms()
        event_ms = max(now, self._last_ms[symbol] + 1)
        if event_ms - now > MAX_AHEAD_MS:
            time.sleep((event_ms - now - MAX_AHEAD_MS) / 1000)
        self._last_ms[symbol] = event_ms
        if event_ms > self._reserved:
            self._reserve(event_ms + RESERVE_MS)
        self.stats.ticks += 1
        # Validated like any tick: pydantic-core's validator is 3x faster than
        # model_construct (pure Python), and this is the benchmark's hot path.
        return Tick(
            source="simulated",
            symbol=symbol,
            price=self._prices[symbol],
            event_time_ms=event_ms,
            ingest_time_ms=now,
        )

    def batches(self, stop: threading.Event) -> Iterator[list[Tick]]:
        symbols = self.symbols
        index = 0
        if self.rate is None:
            while not stop.is_set():
                batch = []
                for _ in range(BATCH_AT_FULL_SPEED):
                    batch.append(self.next_tick(symbols[index % len(symbols)]))
                    index += 1
                yield batch
            return
        # Paced: ticks are due at start + n / rate; batch what is due every few ms.
        started = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - started) * self.rate) - index
            if due <= 0:
                stop.wait(min(0.005, 1.0 / self.rate))
                continue
            batch = []
            for _ in range(due):
                batch.append(self.next_tick(symbols[index % len(symbols)]))
                index += 1
            yield batch

    def _reserve(self, until_ms: int) -> None:
        """Record that event times up to `until_ms` may be used (before using them)."""
        self._reserved = until_ms
        if self._state_file is None:
            return
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            partial = self._state_file.with_suffix(".tmp")
            with partial.open("w") as file:  # durable before it replaces the last mark
                file.write(str(until_ms))
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, self._state_file)
        except OSError as error:
            raise HighWaterMarkError(
                f"the simulated source cannot keep its high-water mark in {self._state_file} "
                f"({error.strerror or error}), so a restart would reuse tick identities: make "
                "it writable (in Docker it is on the data volume)"
            ) from error


def _read_mark(state_file: Path | None) -> int:
    """The last run's reserved event time: 0 without a file (a fresh start), else the file's."""
    if state_file is None:
        return 0
    try:
        raw = state_file.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as error:
        raise _unreadable(state_file, error.strerror or str(error)) from error
    text = raw.decode("ascii", errors="replace").strip()
    if not text.isdigit() or int(text) <= 0:
        raise _unreadable(state_file, f"it holds {raw[:40]!r}, not an event time in ms")
    return int(text)


def _unreadable(state_file: Path, why: str) -> HighWaterMarkError:
    return HighWaterMarkError(
        f"the simulated source's high-water mark {state_file} is unreadable ({why}): restore "
        "it from a backup, or delete it to start afresh, accepting that new ticks may reuse "
        "the last run's identities (MongoDB keeps the old prices for those)"
    )
