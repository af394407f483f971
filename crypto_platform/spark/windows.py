"""Which sliding windows a tick falls in: the rule of Spark's `window(event_time, length, slide)`.

Windows start at multiples of the slide (epoch 0 as the origin) and hold `[start, start +
length)`. `window_starts` is plain Python, so checks outside Spark (the chaos run, the
tests' reference) count ticks per window exactly as the aggregation job does; the job
itself assigns a whole batch at once with `window_members`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def window_starts(event_time_ms: int, window_s: int, slide_s: int) -> list[int]:
    """Starts (epoch seconds) of every window holding a tick at `event_time_ms`, newest first."""
    slide_ms, window_ms = slide_s * 1000, window_s * 1000
    start = event_time_ms - event_time_ms % slide_ms
    starts = []
    while start > event_time_ms - window_ms:
        starts.append(start // 1000)
        start -= slide_ms
    return starts


def window_members(
    event_times_ms: npt.NDArray[np.int64], window_ms: int, slide_ms: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Every (tick index, window start ms) pair of a batch: the same rule, vectorised."""
    newest_start = event_times_ms - event_times_ms % slide_ms
    spans = -(-window_ms // slide_ms)  # how many windows can hold one tick
    index = np.tile(np.arange(len(event_times_ms)), spans)
    starts = np.concatenate([newest_start - k * slide_ms for k in range(spans)])
    holds = starts > event_times_ms[index] - window_ms
    return index[holds], starts[holds]
