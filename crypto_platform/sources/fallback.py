"""`auto`: the best-ranked live source that answers, and a way back to it after a fallback.

The candidates are ranked: live sources first (Binance, then Coinranking with a key), a
last resort after them (the simulator). At the start each live candidate is probed once,
quickly (one attempt, a short timeout); the first that answers is built afresh with its
full retry policy (retries, backoff, Retry-After, circuit breaker) and the probe's ticks
are its first batch; if none answers, the last resort runs, loudly. While a candidate
other than the first runs, the better-ranked live ones are probed the same way every
`reprobe_s` seconds, between batches, and the best that answers takes over. A live source
that runs is never left for a worse one: its failed polls are retried by the source
itself, as when it is chosen by name.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from crypto_platform.errors import PlatformError
from crypto_platform.sources.base import PollingSource, PriceSource
from crypto_platform.ticks import Tick

__all__ = ["PROBE_TIMEOUT_S", "FallbackSource", "LiveFactory"]

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0

# Builds a live source; keyword HTTP options (`attempts`, `timeout`) make it a probe.
LiveFactory = Callable[..., PollingSource]


class _StopOrDeadline(threading.Event):
    """`stop`, seen as set once `deadline` (monotonic) has passed too: ends a source's loop."""

    def __init__(self, stop: threading.Event, deadline: float) -> None:
        super().__init__()
        self._stop = stop
        self._deadline = deadline

    def is_set(self) -> bool:
        return self._stop.is_set() or time.monotonic() >= self._deadline

    def wait(self, timeout: float | None = None) -> bool:
        left = self._deadline - time.monotonic()
        if timeout is not None:
            left = min(left, timeout)
        if math.isinf(left):
            return self._stop.wait()
        return self._stop.wait(max(0.0, left)) or self.is_set()


class FallbackSource(PriceSource):
    """Yields from the current candidate; re-probes the better live ones when due.

    `name` is the current candidate's (every tick's `source` says the same);
    `stats` counts across candidates (they count into it), `stats.switches` the
    changes of candidate after the start.
    """

    def __init__(
        self,
        symbols: list[str],
        live: Sequence[LiveFactory],
        last_resort: Callable[[], PriceSource],
        *,
        reprobe_s: float,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        super().__init__(symbols)
        self._live = list(live)
        self.reprobe_s = reprobe_s
        self.probe_timeout_s = probe_timeout_s
        self._due = math.inf
        found, reasons = self._probe(len(self._live), None)
        if found is not None:
            self._adopt_live(*found)
            log.info("auto: using the live source %s%s", self.name, self._reprobe_note())
            return
        self._adopt(len(self._live), last_resort())
        log.warning(
            "auto: NO LIVE SOURCE ANSWERED (%s). Using %s prices: every tick says source=%s "
            "until a live source answers a re-probe (every %gs). Set CRYPTO_SOURCE to choose "
            "a source explicitly.",
            "; ".join(reasons),
            self.name.upper(),
            self.name,
            self.reprobe_s,
        )

    def batches(self, stop: threading.Event) -> Iterator[list[Tick]]:
        while not stop.is_set():
            until = stop if math.isinf(self._due) else _StopOrDeadline(stop, self._due)
            yield from self._current.batches(until)
            if stop.is_set() or time.monotonic() < self._due:
                return  # stopped, or the source ran out by itself
            self._reprobe(stop)

    def close(self) -> None:
        self._current.close()

    def _reprobe(self, stop: threading.Event) -> None:
        """Probe the live candidates ranked above the current one; switch to the first up."""
        found, reasons = self._probe(self._rank, stop)
        if found is None:
            self._due = time.monotonic() + self.reprobe_s
            if not stop.is_set():
                log.info(
                    "auto: still on %s: %s; next re-probe in %gs",
                    self.name,
                    "; ".join(reasons),
                    self.reprobe_s,
                )
            return
        before = self._current
        self._adopt_live(*found)
        before.close()
        self.stats.switches += 1
        log.warning(
            "auto: switched from %s to %s: %s answered a re-probe%s (switch %d)%s",
            before.name,
            self.name,
            self.name,
            f" ({'; '.join(reasons)})" if reasons else "",
            self.stats.switches,
            self._reprobe_note(),
        )

    def _probe(
        self, above: int, stop: threading.Event | None
    ) -> tuple[tuple[int, list[Tick]] | None, list[str]]:
        """The rank and ticks of the first of the `above` best live candidates that answers.

        One request each (one attempt, `probe_timeout_s`); a set `stop` probes no more.
        Also the reasons of those that did not answer.
        """
        reasons: list[str] = []
        for rank, make in enumerate(self._live[:above]):
            if stop is not None and stop.is_set():
                break
            probe = make(attempts=1, timeout=self.probe_timeout_s)
            try:
                ticks = probe.poll()
                if ticks:
                    return (rank, ticks), reasons
                reasons.append(f"{probe.name}: no usable prices")
            except PlatformError as error:
                reasons.append(f"{probe.name}: {error}")
            finally:
                probe.close()
        return None, reasons

    def _adopt_live(self, rank: int, ticks: list[Tick]) -> None:
        """Run the live candidate `rank` with its full retry policy, `ticks` its first batch."""
        source = self._live[rank]()
        self._adopt(rank, source)
        source.prime(ticks)

    def _adopt(self, rank: int, source: PriceSource) -> None:
        source.stats = self.stats  # counters stay cumulative across switches
        self._current, self._rank, self.name = source, rank, source.name
        self._due = time.monotonic() + self.reprobe_s if rank else math.inf

    def _reprobe_note(self) -> str:
        return f"; re-probing better sources every {self.reprobe_s:g}s" if self._rank else ""
