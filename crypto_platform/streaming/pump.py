"""Move ticks from a source to a destination until a count, a duration or a stop."""

from __future__ import annotations

import threading
from collections.abc import Callable

from crypto_platform.sources import PriceSource
from crypto_platform.streaming.progress import Extra, Progress, no_extra
from crypto_platform.ticks import Tick


def pump(
    source: PriceSource,
    deliver: Callable[[list[Tick]], None],
    stop: threading.Event,
    *,
    count: int | None = None,
    duration: float | None = None,
    progress: Progress | None = None,
    extra: Extra = no_extra,
) -> int:
    """Deliver batches from `source` until `stop`, `count` ticks or `duration` s; return the count.

    `duration` sets `stop` from a timer, so a source waiting between polls ends on time.
    """
    progress = progress or Progress(source.name)
    timer = threading.Timer(duration, stop.set) if duration is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    delivered = 0
    try:
        for batch in source.batches(stop):
            if count is not None:
                batch = batch[: count - delivered]
            deliver(batch)
            delivered += len(batch)
            progress.maybe_report(delivered, extra)
            if (count is not None and delivered >= count) or stop.is_set():
                break
    finally:
        if timer is not None:
            timer.cancel()
    progress.emit(delivered, extra)
    return delivered
