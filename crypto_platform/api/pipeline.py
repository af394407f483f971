"""The dashboard's pipeline panel from one observation: ticks/s, lag, DLQ, freshness."""

from __future__ import annotations

import time

from crypto_platform.api.errors import BACKENDS
from crypto_platform.api.models import BackendState, Pipeline, utc
from crypto_platform.api.observation import Observation
from crypto_platform.settings import Settings


class PipelineMeter:
    """Ticks/s is the growth of the tick topic since this app's previous reading."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._previous: tuple[float, int] | None = None

    def state(self, seen: Observation) -> Pipeline:
        s = self.settings
        ticks = rate = lag = dlq = None
        if seen.kafka is not None:
            ticks = seen.kafka.messages.get(s.kafka_topic, 0)
            lag = seen.kafka.lag
            dlq = seen.kafka.messages.get(s.kafka_dlq_topic, 0)
            now = time.monotonic()
            if self._previous is not None and now > self._previous[0]:
                rate = round(max(0, ticks - self._previous[1]) / (now - self._previous[0]), 2)
            self._previous = (now, ticks)
        newest = max((utc(row.event_time) for row in seen.latest_prices), default=None)
        return Pipeline(
            ticks_total=ticks,
            ticks_per_s=rate,
            consumer_lag=lag,
            dlq_messages=dlq,
            mongo_documents=seen.mongo_documents,
            freshness_s=(seen.taken_at - newest).total_seconds() if newest else None,
            backends={
                name: BackendState(up=seen.up(name), error=seen.errors.get(name))
                for name in BACKENDS
            },
        )
