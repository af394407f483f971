"""Hours that received ticks the Spark job drops as late: what the repair must redo.

Spark drops a tick older than its watermark (the newest event time of the batches before,
less `CRYPTO_AGGREGATE_WATERMARK_S`) before it reaches a window, and the dropped rows are
seen nowhere but in a count. The MongoDB sink reads the same topic and sees every tick, so
it applies the same rule: a tick older than the newest event time stored before its poll
(in MongoDB when the sink starts, then its own polls), less the watermark, is late. Its
hour is recorded in MongoDB (`late_hours`: a count, when the last one came and the newest
event time among them), and the completeness automation repairs the hour from MongoDB once
Spark's windows over those ticks are final; again once its candles have closed, when a
repair had to leave them open (`await_candles`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from crypto_platform.ticks import now_ms

log = logging.getLogger(__name__)

__all__ = ["HOUR_MS", "LateTicks", "await_candles"]

HOUR_MS = 3_600_000


def await_candles(late_hours: Collection, hour: int, close_ms: int) -> None:
    """Have the hour repaired again once the candles a repair left open close, at `close_ms`.

    Asked once per moment: a repair that finds them still open (the stream stopped) asks for
    nothing more, so no repair follows another every minute.
    """
    result = late_hours.update_one(
        {"_id": hour}, {"$max": {"candles_close_ms": close_ms}}, upsert=True
    )
    if result.modified_count or result.upserted_id is not None:
        late_hours.update_one({"_id": hour}, {"$max": {"last_seen_ms": now_ms()}})


class LateTicks:
    """The sink's view of Spark's watermark, and the hours of the ticks behind it."""

    def __init__(self, watermark_s: int, late_hours: Collection, newest_ms: int = 0) -> None:
        self._watermark_ms = watermark_s * 1000
        self._late_hours = late_hours
        self._newest = newest_ms  # the newest event time stored before this poll
        self._pending: Counter[int] = Counter()
        self._newest_late: dict[int, int] = {}  # hour: the newest late event time in it

    def see(self, event_times_ms: Iterable[int]) -> int:
        """Count this poll's late ticks by hour; returns how many were late."""
        times = list(event_times_ms)
        if not times:
            return 0
        mark = self._newest - self._watermark_ms
        late = [t for t in times if t < mark]
        for t in late:
            hour = t - t % HOUR_MS
            self._pending[hour] += 1
            self._newest_late[hour] = max(self._newest_late.get(hour, t), t)
        self._newest = max(self._newest, max(times))
        if self._pending:
            self._record()
        return len(late)

    def _record(self) -> None:
        """Add the pending counts to `late_hours` (kept for the next poll if MongoDB is down)."""
        stamp = now_ms()
        try:
            for hour, count in list(self._pending.items()):
                self._late_hours.update_one(
                    {"_id": hour},
                    {
                        "$inc": {"count": count},
                        "$max": {"last_seen_ms": stamp, "newest_late_ms": self._newest_late[hour]},
                    },
                    upsert=True,
                )
                del self._pending[hour], self._newest_late[hour]
        except PyMongoError as error:
            log.warning("could not record the late ticks' hours yet (%s); will try again", error)
