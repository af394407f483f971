"""One reading of every backend at once, shared by `/health`, `/pipeline`, `/metrics` and push.

A reading is kept for `api_backend_cache_s` and taken by one caller at a time: 500
concurrent requests cost one reading, not 500, and open no broker connection.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from crypto_platform.api.backends import Backends, KafkaReading, MongoReading
from crypto_platform.api.errors import BackendUnavailable
from crypto_platform.api.reader import CassandraReader

log = logging.getLogger(__name__)


@dataclass
class Observation:
    """What each backend answered now; a backend that failed has its short reason in `errors`."""

    taken_at: dt.datetime
    latest_prices: list[Any] = field(default_factory=list)
    latest_aggregates: list[Any] = field(default_factory=list)
    kafka: KafkaReading | None = None
    mongo: MongoReading | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def up(self, backend: str) -> bool:
        return backend not in self.errors


class Observer:
    """The app's readings of Cassandra, Kafka and MongoDB, each reused for `ttl_s`."""

    def __init__(self, reader: CassandraReader, backends: Backends, ttl_s: float) -> None:
        self.reader = reader
        self.backends = backends
        self.ttl_s = ttl_s
        self._lock = asyncio.Lock()
        self._last: Observation | None = None
        self._last_at = 0.0

    async def observe(self) -> Observation:
        """The newest reading if younger than `ttl_s`, else a new one (never raises)."""
        async with self._lock:  # the callers that queue here get the reading just taken
            if self._last is None or time.monotonic() - self._last_at >= self.ttl_s:
                self._last, self._last_at = await self._read(), time.monotonic()
            return self._last

    async def _read(self) -> Observation:
        seen = Observation(taken_at=dt.datetime.now(dt.UTC))

        async def cassandra() -> None:
            seen.latest_prices = await self.reader.latest_prices()
            seen.latest_aggregates = await self.reader.latest_aggregates()

        async def kafka() -> None:
            seen.kafka = await asyncio.to_thread(self.backends.kafka)

        async def mongodb() -> None:
            seen.mongo = await asyncio.to_thread(self.backends.mongo)

        await asyncio.gather(
            self._guarded(seen, "cassandra", cassandra),
            self._guarded(seen, "kafka", kafka),
            self._guarded(seen, "mongodb", mongodb),
        )
        return seen

    async def _guarded(
        self, seen: Observation, name: str, read: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            await read()
        except BackendUnavailable as error:
            seen.errors[name] = error.detail
            if self._last is None or self._last.up(name):
                # Clients get the short reason; the log gets the driver's own words, once.
                log.warning("%s (%s)", error, error.__cause__ or "no driver error")
