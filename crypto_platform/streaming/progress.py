"""Progress of a long-running loop: counts, rates, and a report every few seconds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Snapshot = Mapping[str, float | int]
Extra = Callable[[], Snapshot]


def no_extra() -> Snapshot:
    return {}


def format_snapshot(snapshot: Snapshot) -> str:
    """`count 10000, rate_per_s 15210.1, ...`: one line for logs."""
    return ", ".join(f"{key} {value}" for key, value in snapshot.items())


@dataclass
class Progress:
    """Calls `report` with a snapshot every `every` seconds, and once more at the end."""

    name: str
    report: Callable[[Snapshot], None] | None = None
    every: float = 5.0
    started: float = field(default_factory=time.monotonic)
    _last_at: float = field(default_factory=time.monotonic)
    _last_count: int = 0

    def maybe_report(self, count: int, extra: Extra = no_extra) -> None:
        """Report if `every` seconds have passed; `extra` is only called then (hot paths)."""
        if time.monotonic() - self._last_at >= self.every:
            self.emit(count, extra)

    def emit(self, count: int, extra: Extra = no_extra) -> Snapshot:
        now = time.monotonic()
        interval = max(now - self._last_at, 1e-9)
        snapshot: dict[str, float | int] = {
            "count": count,
            "rate_per_s": round((count - self._last_count) / interval, 1),
            "avg_rate_per_s": round(count / max(now - self.started, 1e-9), 1),
            "elapsed_s": round(now - self.started, 1),
            **extra(),
        }
        self._last_at, self._last_count = now, count
        log.info("%s: %s", self.name, format_snapshot(snapshot))
        if self.report is not None:
            self.report(snapshot)
        return snapshot
