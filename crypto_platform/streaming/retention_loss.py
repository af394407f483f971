"""Offsets Kafka's retention removed before a consumer read them: found, counted, recorded.

A consumer whose committed position has been removed jumps to the earliest retained
offset (the sink's reset policy), and kafka-python says so at INFO only. `RetentionWatch`
sees the jump in what a poll returns (the first offset past the position expected), asks
the broker where the partition now begins, and reports the removed range. The ranges are
recorded in MongoDB (`data_loss`), where a check and `/metrics` find them: the ticks in
them never reached the store of record.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from crypto_platform.ticks import now_ms

log = logging.getLogger(__name__)

__all__ = ["LostRange", "RetentionWatch", "record_losses"]


@dataclass(frozen=True)
class LostRange:
    """Offsets [first, last] of a partition, removed by retention before `consumer` read them."""

    consumer: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    detected_at_ms: int

    @property
    def count(self) -> int:
        return self.last_offset - self.first_offset + 1

    def describe(self) -> str:
        return (
            f"{self.topic}[{self.partition}] offsets {self.first_offset}..{self.last_offset} "
            f"({self.count}) were removed by retention before {self.consumer} read them"
        )

    def document(self) -> dict[str, Any]:
        """Its `data_loss` document; the `_id` makes recording it twice harmless."""
        key = f"{self.consumer}:{self.topic}:{self.partition}:{self.first_offset}"
        return {"_id": key, **asdict(self), "count": self.count}


class RetentionWatch:
    """Per assigned partition, the offset the next poll should start at."""

    def __init__(self, consumer: KafkaConsumer, name: str) -> None:
        self._consumer = consumer
        self._name = name
        self._next: dict[TopicPartition, int] = {}

    def check(self, polled: dict[TopicPartition, list[Any]]) -> list[LostRange]:
        """The ranges skipped before this poll's records (call once per poll)."""
        lost = []
        for tp, records in polled.items():
            if not records:
                continue
            first, known = records[0].offset, self._next.get(tp)
            self._next[tp] = records[-1].offset + 1
            if first == known:  # the usual case: no request to the broker
                continue
            # A new assignment, or a jump: the group's commit says where reading was.
            expected = max(known if known is not None else -1, self._committed(tp))
            if 0 <= expected < first:
                begins = self._beginning(tp)
                if begins is not None and begins > expected:
                    last = min(first, begins) - 1
                    lost.append(
                        LostRange(self._name, tp.topic, tp.partition, expected, last, now_ms())
                    )
        return lost

    def _committed(self, tp: TopicPartition) -> int:
        try:
            return self._consumer.committed(tp) or -1
        except KafkaError:
            return -1

    def _beginning(self, tp: TopicPartition) -> int | None:
        try:
            return int(self._consumer.beginning_offsets([tp])[tp])
        except KafkaError:
            return None


def record_losses(collection: Collection, ranges: list[LostRange]) -> bool:
    """Upsert the ranges into `data_loss`; False if MongoDB could not take them now."""
    try:
        for lost in ranges:
            document = lost.document()
            collection.replace_one({"_id": document["_id"]}, document, upsert=True)
    except PyMongoError as error:
        log.warning("could not record the retention loss yet (%s); will try again", error)
        return False
    return True
