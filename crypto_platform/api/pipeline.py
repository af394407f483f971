"""The dashboard's pipeline panel from one observation: ticks/s, lag, DLQ, freshness."""

from __future__ import annotations

import datetime as dt

from crypto_platform.api.errors import BACKENDS
from crypto_platform.api.models import BackendState, Pipeline, utc
from crypto_platform.api.observation import Observation
from crypto_platform.settings import Settings


class PipelineMeter:
    """Ticks/s is the growth of the tick topic between this app's two latest readings.

    Readings are shared for a while (observation.py): the same one seen twice keeps its rate.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._previous: tuple[dt.datetime, int] | None = None
        self._rate: float | None = None

    def state(self, seen: Observation) -> Pipeline:
        s = self.settings
        ticks = lag = dlq = None
        if seen.kafka is not None:
            ticks = seen.kafka.messages.get(s.kafka_topic, 0)
            lag = seen.kafka.lag
            dlq = seen.kafka.messages.get(s.kafka_dlq_topic, 0)
            self._note(seen.taken_at, ticks)
        rate = self._rate if ticks is not None else None
        newest = max((utc(row.event_time) for row in seen.latest_prices), default=None)
        return Pipeline(
            ticks_total=ticks,
            ticks_per_s=rate,
            consumer_lag=lag,
            dlq_messages=dlq,
            mongo_documents=seen.mongo.documents if seen.mongo else None,
            freshness_s=(seen.taken_at - newest).total_seconds() if newest else None,
            backends={
                name: BackendState(up=seen.up(name), error=seen.errors.get(name))
                for name in BACKENDS
            },
        )

    def _note(self, taken_at: dt.datetime, ticks: int) -> None:
        if self._previous is not None and taken_at <= self._previous[0]:
            return  # this reading was counted already (or is older)
        if self._previous is not None:
            then, before = self._previous
            elapsed = (taken_at - then).total_seconds()
            self._rate = round(max(0, ticks - before) / elapsed, 2)
        self._previous = (taken_at, ticks)
