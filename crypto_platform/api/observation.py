"""One reading of every backend at once, shared by `/health`, `/pipeline` and `/metrics`."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from crypto_platform.api.backends import Backends, KafkaReading
from crypto_platform.api.errors import BackendUnavailable
from crypto_platform.api.reader import CassandraReader


@dataclass
class Observation:
    """What each backend answered now; a backend that failed has its error in `errors`."""

    taken_at: dt.datetime
    latest_prices: list[Any] = field(default_factory=list)
    latest_aggregates: list[Any] = field(default_factory=list)
    kafka: KafkaReading | None = None
    mongo_documents: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def up(self, backend: str) -> bool:
        return backend not in self.errors


async def observe(reader: CassandraReader, backends: Backends) -> Observation:
    """Ask Cassandra, Kafka and MongoDB concurrently; never raises for a backend down."""
    seen = Observation(taken_at=dt.datetime.now(dt.UTC))

    async def cassandra() -> None:
        seen.latest_prices = await reader.latest_prices()
        seen.latest_aggregates = await reader.latest_aggregates()

    async def kafka() -> None:
        seen.kafka = await asyncio.to_thread(backends.kafka)

    async def mongodb() -> None:
        seen.mongo_documents = await asyncio.to_thread(backends.mongo_documents)

    async def guarded(name: str, read: Any) -> None:
        try:
            await read()
        except BackendUnavailable as error:
            seen.errors[name] = error.detail

    await asyncio.gather(
        guarded("cassandra", cassandra), guarded("kafka", kafka), guarded("mongodb", mongodb)
    )
    return seen
