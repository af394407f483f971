"""Binance's request-weight budget: what a minute allows, spent by what its header says is used."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = ["USED_WEIGHT_HEADER", "WEIGHT_PER_MINUTE", "WeightBudget"]

WEIGHT_PER_MINUTE = 6_000  # Binance spot: request weight per IP and minute
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


@dataclass
class WeightBudget:
    """The weight used in the current window (Binance counts per clock minute).

    Binance says after each answer how much its minute has used (`observe`); before a
    request (`spend`) that would exceed the limit, we wait for the next window, where the
    count starts again, rather than be answered 429 (and, repeated, banned with 418).
    `window_s` is a minute; tests shorten it.
    """

    limit: int = WEIGHT_PER_MINUTE
    window_s: float = 60.0
    used: int = 0
    waits: int = 0
    waited_s: float = 0.0
    _window: int = -1

    def spend(self, weight: int) -> None:
        """Before a request of `weight`: wait for the next window if this one cannot take it."""
        now = time.time()
        window = int(now // self.window_s)
        if window != self._window:
            self._window, self.used = window, 0
        if self.used + weight > self.limit:
            wait = (window + 1) * self.window_s - now
            log.info(
                "binance: %d of %d request weight used this minute; waiting %.1f s for the next",
                self.used,
                self.limit,
                wait,
            )
            time.sleep(wait)
            self.waits += 1
            self.waited_s += wait
            self._window, self.used = window + 1, 0
        self.used += weight

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the used weight Binance reports (`X-MBX-USED-WEIGHT-1M`) as this window's."""
        value = headers.get(USED_WEIGHT_HEADER, "")
        if value.isdigit():
            self._window, self.used = int(time.time() // self.window_s), int(value)
