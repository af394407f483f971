"""`crypto-platform dlq replay`: after a fix, send dead letters back to the tick topic.

Each dead letter is checked by the tick's one validation (`Tick.from_json`): a valid one
goes back to the tick topic with its original key and bytes, so it keeps its identity
and MongoDB stores it once, whatever was replayed before; an invalid one stays in the
dead-letter topic and is counted by reason. A truncated copy (see `dead_letters`) lacks
its original bytes and cannot be replayed. The replay reads the dead-letter topic with a
consumer group of its own and commits only after every re-publication is acknowledged,
and, in each partition, only up to its first dead letter that is still invalid: that one
stays replayable after the next fix. A later replay reads again from there; of the valid
dead letters after it, those MongoDB already holds (by their identity) are not sent again.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata
from pymongo.collection import Collection

from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo
from crypto_platform.streaming.dead_letters import TRUNCATED
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.ticks import InvalidTick, Tick

__all__ = ["ReplayFailed", "ReplayStats", "replay_dead_letters", "replay_group"]

# Where a re-published tick came from: `<dlq topic>[<partition>]@<offset>`.
REPLAYED_FROM = "dlq.replayed_from"


class ReplayFailed(PlatformError):
    """A re-published tick was not acknowledged: nothing was committed, replay again."""


@dataclass
class ReplayStats:
    """What one replay did with the dead letters it had not seen before."""

    replayed: int = 0
    still_invalid: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    already_stored: int = 0  # valid, and in MongoDB since an earlier replay

    def summary(self, settings: Settings) -> str:
        line = (
            f"replayed {self.replayed} dead letters from {settings.kafka_dlq_topic} to "
            f"{settings.kafka_topic}; {sum(self.still_invalid.values())} still invalid"
        )
        if self.truncated:
            line += f", {self.truncated} truncated (their original bytes were too large to keep)"
        if self.already_stored:
            line += f", {self.already_stored} already stored (replayed before)"
        for reason, count in self.still_invalid.most_common(5):
            line += f"\n  {count} x {reason}"
        return line


def replay_group(settings: Settings) -> str:
    """The replay's own consumer group on the dead-letter topic."""
    return f"{settings.kafka_consumer_group}-dlq-replay"


def replay_dead_letters(settings: Settings, *, timeout_s: float = 30.0) -> ReplayStats:
    """Replay every dead letter the replay group has not committed yet; see the module doc."""
    options = kafka_client_options(settings)
    with contextlib.ExitStack() as cleanup:
        consumer = KafkaConsumer(
            **options,
            group_id=replay_group(settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        cleanup.callback(consumer.close)
        producer = KafkaProducer(**options, acks="all", enable_idempotence=True, linger_ms=5)
        cleanup.callback(producer.close, timeout=10)
        partitions = [
            TopicPartition(settings.kafka_dlq_topic, partition)
            for partition in consumer.partitions_for_topic(settings.kafka_dlq_topic) or []
        ]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        client = mongo.connect(settings)
        cleanup.callback(client.close)
        prices = mongo.prices_collection(client, settings)
        stats = ReplayStats()
        sent: list[FutureRecordMetadata] = []
        commit_at = dict(ends)  # lowered to a partition's first dead letter still invalid
        last_read = time.monotonic()
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() - last_read > timeout_s:
                raise ReplayFailed(
                    f"{settings.kafka_dlq_topic} sent nothing for {timeout_s:.0f}s with dead "
                    "letters left to read; nothing was committed: run the replay again"
                )
            for tp, records in consumer.poll(timeout_ms=500).items():
                last_read = time.monotonic()
                due = [record for record in records if record.offset < ends[tp]]
                checked = (_is_valid(record, stats, tp, commit_at) for record in due)
                valid = [pair for pair in checked if pair is not None]
                stored = _stored_identities(prices, valid)
                for record, identity in valid:
                    if identity in stored:
                        stats.already_stored += 1
                    else:
                        sent.append(_republish(record, settings, producer, stats))
        producer.flush(timeout=timeout_s)
        for future in sent:
            if not future.succeeded():
                raise ReplayFailed(
                    f"re-publishing to {settings.kafka_topic} failed ({future.exception}); "
                    "nothing was committed: run the replay again"
                )
        consumer.commit({tp: OffsetAndMetadata(commit_at[tp], "", -1) for tp in partitions})
        return stats


def _is_valid(
    record: ConsumerRecord,
    stats: ReplayStats,
    tp: TopicPartition,
    commit_at: dict[TopicPartition, int],
) -> tuple[ConsumerRecord, str] | None:
    """The record and its tick's identity if it can be replayed now; else counted, and None.

    A still-invalid one keeps the partition's commit at or before it, for the next replay.
    """
    if TRUNCATED in dict(record.headers or []):
        stats.truncated += 1
        return None
    try:
        identity = Tick.from_json(record.value).identity
    except InvalidTick as error:
        stats.still_invalid[error.reason] += 1
        commit_at[tp] = min(commit_at[tp], record.offset)
        return None
    return record, identity


def _stored_identities(prices: Collection, valid: list[tuple[ConsumerRecord, str]]) -> set[str]:
    """Which of these ticks MongoDB holds already (one query per poll)."""
    if not valid:
        return set()
    ids = [identity for _, identity in valid]
    return {doc["_id"] for doc in prices.find({"_id": {"$in": ids}}, {"_id": 1})}


def _republish(
    record: ConsumerRecord, settings: Settings, producer: KafkaProducer, stats: ReplayStats
) -> FutureRecordMetadata:
    stats.replayed += 1
    origin = f"{record.topic}[{record.partition}]@{record.offset}"
    future: FutureRecordMetadata = producer.send(
        settings.kafka_topic,
        key=record.key,
        value=record.value,
        headers=[(REPLAYED_FROM, origin.encode())],
    )
    return future
