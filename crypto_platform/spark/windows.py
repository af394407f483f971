"""Which sliding windows a tick falls in: the rule of Spark's `window(event_time, length, slide)`.

Windows start at multiples of the slide (epoch 0 as the origin) and hold `[start, start +
length)`. Plain Python, so checks outside Spark (the chaos run, the tests' reference) count
ticks per window exactly as the aggregation job does.
"""

from __future__ import annotations


def window_starts(event_time_ms: int, window_s: int, slide_s: int) -> list[int]:
    """Starts (epoch seconds) of every window holding a tick at `event_time_ms`, newest first."""
    slide_ms, window_ms = slide_s * 1000, window_s * 1000
    start = event_time_ms - event_time_ms % slide_ms
    starts = []
    while start > event_time_ms - window_ms:
        starts.append(start // 1000)
        start -= slide_ms
    return starts
