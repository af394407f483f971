"""The MongoDB sink: `crypto.prices` into `crypto.prices`, exactly once in effect.

Per poll: parse every message (bad ones to the DLQ, acknowledged), stamp the rest with
`handed_at_ms`, insert them unordered with a journaled write (a duplicate `_id` means
"already stored"), and only then commit the offsets. A crash anywhere redelivers at most
the last poll, which the `_id` makes harmless. MongoDB down, or a write not acknowledged
by the write concern's members: the poll is retried with backoff until it is stored,
committing nothing meanwhile. A valid tick that MongoDB still cannot take (it cannot be
encoded, or the server refuses that document) goes to the DLQ with the server's reason:
one message never stops the sink.

`handed_at_ms` is when the sink handed the batch to MongoDB, and is named for that: the
server's own time at the write cannot be in the document, since an insert cannot stamp it
(only update operators can: `$currentDate`, `$$NOW`), and stamping after the acknowledgement
would cost a second write per batch. The write itself is measured here instead: each
batch's time from hand-over to acknowledgement, retries included, in the progress
(`write_ms_p50`, `write_ms_p99`). Documents stored before the rename carry the same
moment as `stored_at_ms`.

Every stop is bounded: `close` gives the handed-over batches a few seconds, then ends the
retries (nothing committed for what was not stored), and closes each client with a timeout.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bson import encode
from bson.errors import BSONError
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from pymongo import WriteConcern
from pymongo.errors import BulkWriteError, ConnectionFailure, PyMongoError
from tenacity import Retrying, retry_if_exception_type

from crypto_platform.errors import PlatformError
from crypto_platform.resilience import jittered_backoff
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo
from crypto_platform.storage.mongo_queries import HANDED_AT
from crypto_platform.streaming.dead_letters import DeadLetters
from crypto_platform.streaming.kafka_options import kafka_client_options
from crypto_platform.streaming.late_ticks import LateTicks
from crypto_platform.streaming.ordered_writer import OrderedWriter, Pause
from crypto_platform.streaming.progress import Progress
from crypto_platform.streaming.retention_loss import LostRange, RetentionWatch, record_losses
from crypto_platform.ticks import InvalidTick, Tick, now_ms

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
# What encoding a document for MongoDB raises: a value BSON has no type for, an integer
# beyond 64 bits, a date out of range, a document over the size limit (an InvalidDocument).
UNENCODABLE = (BSONError, OverflowError, ValueError)
WRITE_SAMPLES = 1000  # the last batches whose write times the progress percentiles cover
CLOSE_TIMEOUT_S = 5.0  # what `close` gives the handed-over batches before ending retries
CLOSE_KAFKA_MS = 5000  # the last commit's and the consumer's close timeout
NEWEST_STORED = "newest_stored_event_ms"  # the progress figure hours settle by


class SinkStopped(PlatformError):
    """Stopped while waiting for MongoDB; nothing of the pending poll was committed."""


class WriteNotDurable(PlatformError):
    """MongoDB stored a write but its write concern was not met: it may be rolled back."""


# A document on its way to MongoDB, with the Kafka record it came from (for its dead letter).
Pending = tuple[ConsumerRecord, dict[str, Any]]


@dataclass
class SinkStats:
    """What a sink run did."""

    consumed: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    write_retries: int = 0
    skipped_offsets: int = 0  # removed by retention before they were read
    late: int = 0  # behind Spark's watermark: their hours are recorded for the repair
    # The newest event time MongoDB holds (read at start, then each write's): hours before
    # it, less the watermark, have settled (`defs/streams/sensors.py`).
    newest_stored_event_ms: int = 0
    # Each recent batch's write, in ms: from hand-over to MongoDB's acknowledgement.
    write_ms: deque[float] = field(default_factory=lambda: deque(maxlen=WRITE_SAMPLES))

    def write_percentiles(self) -> dict[str, float]:
        """`write_ms_p50` and `write_ms_p99` (nearest rank); nothing before the first write."""
        ordered = sorted(self.write_ms)
        return {
            f"write_ms_p{rank}": ordered[math.ceil(rank / 100 * len(ordered)) - 1]
            for rank in (50, 99)
            if ordered
        }


def _acknowledgers(write_concern: str) -> int | str:
    """`w` of the write concern: a number of members, or "majority"."""
    return int(write_concern) if write_concern.isdigit() else write_concern


class MongoSink:
    """Kafka consumer (group `crypto-mongo-sink`), DLQ producer and MongoDB collection."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_poll_records: int = 5000,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
    ) -> None:
        self.settings = settings
        self.stats = SinkStats()
        self._max_poll_records = max_poll_records
        self._backoff = jittered_backoff(retry_initial, retry_max)
        self.consumer = KafkaConsumer(
            settings.kafka_topic,
            **kafka_client_options(settings),
            group_id=settings.kafka_consumer_group,
            client_id="crypto-mongo-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_poll_records,
            max_poll_interval_ms=600_000,
            # Static membership: a sink restarted after a crash rejoins as the same member
            # and gets its partitions back without waiting for the old session to expire.
            group_instance_id=settings.kafka_consumer_instance_id
            or f"{socket.gethostname()}-mongo-sink",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
        )
        self.dead_letters = DeadLetters(settings)
        # The writer thread's own: a kafka-python producer is thread-safe, the pending list
        # of a `DeadLetters` is not.
        self._write_dead_letters = DeadLetters(settings)
        self._client = mongo.connect(settings)
        # Fail at start, with a clear message, if MongoDB is not there at all; once
        # running, an outage is waited out instead (see `_write_with_retries`).
        self._client.admin.command("ping")
        self.collection = mongo.prices_collection(self._client, settings).with_options(
            write_concern=WriteConcern(w=_acknowledgers(settings.mongo_write_concern), j=True)
        )
        self._writer: OrderedWriter[Pending] = OrderedWriter(self._store)
        self._retention = RetentionWatch(self.consumer, "mongo-sink")
        self._losses = mongo.data_loss_collection(self._client, settings)
        newest = self.collection.find_one({}, {"event_time_ms": 1}, sort=[("event_time_ms", -1)])
        self.stats.newest_stored_event_ms = int(newest["event_time_ms"]) if newest else 0
        self._late = LateTicks(
            settings.aggregate_watermark_s,
            mongo.late_hours_collection(self._client, settings),
            newest_ms=self.stats.newest_stored_event_ms,
        )
        self._unrecorded: list[LostRange] = []

    def poll_once(
        self, stop: threading.Event, timeout_ms: int = 500, limit: int | None = None
    ) -> int:
        """Poll, parse and hand one batch to the writer; return how many were consumed.

        The batch's offsets are committed on a later call (or by `flush`), once the
        writer has stored it: the Kafka side of the next batch overlaps this write.
        """
        self._writer.start(stop)
        self._commit_written()
        max_records = min(self._max_poll_records, limit) if limit else self._max_poll_records
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        records = [record for batch in polled.values() for record in batch]
        if not records:
            return 0
        self._note_losses(self._retention.check(polled))
        documents: list[Pending] = []
        dead = 0
        for record in records:
            try:
                tick = Tick.from_json(record.value, written_ms=record.timestamp)
                documents.append((record, tick.to_document()))
            except InvalidTick as error:
                self._dead_letter(self.dead_letters, record, error.reason)
                dead += 1
            except UNENCODABLE as error:  # valid, yet no MongoDB document can hold it
                self._dead_letter(
                    self.dead_letters, record, f"cannot be stored in MongoDB: {error}"
                )
                dead += 1
        if dead:
            self.dead_letters.flush()
        self.stats.late += self._late.see(doc["event_time_ms"] for _, doc in documents)
        offsets = {
            tp: OffsetAndMetadata(batch[-1].offset + 1, "", -1)
            for tp, batch in polled.items()
            if batch
        }
        self._writer.submit(documents, offsets)
        self.stats.consumed += len(records)
        return len(records)

    def flush(self) -> None:
        """Wait until every handed-over batch is stored, then commit its offsets."""
        self._writer.wait_idle()
        self._commit_written()

    def _commit_written(self, timeout_ms: int | None = None) -> None:
        offsets = self._writer.take_written()
        if offsets:
            self._commit(offsets, timeout_ms)

    def _note_losses(self, lost: list[LostRange]) -> None:
        """Warn of each range retention removed, count it, and record it in MongoDB."""
        for gone in lost:
            self.stats.skipped_offsets += gone.count
            log.warning(
                "%s: those ticks never reached MongoDB. Keep the sink running, or raise "
                "CRYPTO_KAFKA_RETENTION_MS (then `crypto-platform provision`)",
                gone.describe(),
            )
        self._unrecorded += lost
        if self._unrecorded and record_losses(self._losses, self._unrecorded):
            self._unrecorded = []

    def _dead_letter(self, letters: DeadLetters, record: ConsumerRecord, reason: str) -> None:
        self.stats.dead_lettered += 1
        if self.stats.dead_lettered <= 3:
            log.warning(
                "dead letter from %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                reason,
            )
        letters.send(record, reason)

    def document_count(self) -> int:
        """Documents in the collection, or -1 while MongoDB cannot answer (never raises).

        Progress reports call this on the consumer thread: an outage is the writer's to
        wait out, so it must not end the sink from here.
        """
        try:
            return int(self.collection.estimated_document_count(maxTimeMS=2000))
        except PyMongoError:
            return -1

    def _store(self, pending: list[Pending], pause: Pause) -> None:
        """The writer's work: stamp `handed_at_ms`, insert (retried while MongoDB is down), time it.

        Documents MongoDB cannot take are dead-lettered (acknowledged) before the batch
        counts as written, so their offsets are committed with it.
        """
        handed_at = now_ms()
        for _, document in pending:
            document[HANDED_AT] = handed_at
        started = time.monotonic()
        refused = self._write_with_retries(pending, pause)
        self.stats.write_ms.append(round((time.monotonic() - started) * 1000, 1))
        for index, reason in refused.items():
            self._dead_letter(self._write_dead_letters, pending[index][0], reason)
        self._write_dead_letters.flush()
        stored = [doc["event_time_ms"] for i, (_, doc) in enumerate(pending) if i not in refused]
        self.stats.newest_stored_event_ms = max([self.stats.newest_stored_event_ms, *stored])

    def _write_with_retries(self, pending: list[Pending], pause: Pause) -> dict[int, str]:
        def sleep_unless_stopped(seconds: float) -> None:
            if pause(seconds):
                raise SinkStopped("stopped while MongoDB was unreachable")

        def note_retry(state: Any) -> None:
            self.stats.write_retries += 1
            log.warning(
                "MongoDB write failed (%s); nothing committed, retrying in %.1fs",
                state.outcome.exception() if state.outcome else "?",
                state.upcoming_sleep,
            )

        retrying = Retrying(
            retry=retry_if_exception_type((ConnectionFailure, WriteNotDurable)),
            wait=self._backoff,
            sleep=sleep_unless_stopped,
            before_sleep=note_retry,
            reraise=True,
        )
        return retrying(self._insert, [document for _, document in pending])

    def _insert(self, documents: list[dict[str, Any]]) -> dict[int, str]:
        """Insert unordered; return the documents refused for themselves: index -> reason.

        Raises `WriteNotDurable` when the write concern was not met (retried: the
        documents already stored make the retry's duplicates, which count as stored).
        """
        try:
            return self._insert_encodable(documents)
        except UNENCODABLE:
            refused = _unencodable(documents)
            if not refused:
                raise
        kept = [i for i in range(len(documents)) if i not in refused]
        stored = self._insert_encodable([documents[i] for i in kept])
        return refused | {kept[i]: reason for i, reason in stored.items()}

    def _insert_encodable(self, documents: list[dict[str, Any]]) -> dict[int, str]:
        try:
            result = self.collection.insert_many(documents, ordered=False)
            self.stats.inserted += len(result.inserted_ids)
            return {}
        except BulkWriteError as error:
            details = error.details
        errors = details.get("writeErrors", [])
        duplicates = sum(1 for e in errors if e.get("code") == DUPLICATE_KEY)
        concern = details.get("writeConcernErrors", [])
        if concern:
            raise WriteNotDurable(
                f"write concern w={self.settings.mongo_write_concern} not met: "
                f"{concern[0].get('errmsg')}; the write may be rolled back"
            )
        self.stats.inserted += details.get("nInserted", 0)
        self.stats.duplicates += duplicates
        return {
            e["index"]: f"MongoDB refused the document: {e.get('errmsg')} (code {e.get('code')})"
            for e in errors
            if e.get("code") != DUPLICATE_KEY
        }

    def _commit(
        self, offsets: dict[TopicPartition, OffsetAndMetadata], timeout_ms: int | None = None
    ) -> None:
        try:
            self.consumer.commit(offsets, timeout_ms=timeout_ms)
        except CommitFailedError as error:
            # The group rebalanced meanwhile: the new owner gets these messages again,
            # and their _id makes the second write a no-op.
            log.warning("offset commit failed after a rebalance (%s); will be redelivered", error)

    def lag(self) -> int:
        """Messages in the topic not yet committed by this group (over assigned partitions)."""
        partitions = list(self.consumer.assignment())
        if not partitions:
            return 0
        try:
            ends = self.consumer.end_offsets(partitions)
            committed = {tp: self.consumer.committed(tp) or 0 for tp in partitions}
        except KafkaError:
            return -1
        return sum(max(0, ends[tp] - committed[tp]) for tp in partitions)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Store and commit what was handed over, for up to `timeout` s, then leave.

        Bounded even when no stop event ended the retries (an error ended the loop during
        an outage): a write still failing then stops, and its batch stays uncommitted.
        """
        self._writer.stop(timeout)
        try:
            self._commit_written(CLOSE_KAFKA_MS)
        except (PlatformError, KafkaError) as error:
            log.warning(
                "closing the sink with batches not stored (they were not committed): %s", error
            )
        closers = (
            self.dead_letters.close,
            self._write_dead_letters.close,
            lambda: self.consumer.close(timeout_ms=CLOSE_KAFKA_MS),
            self._client.close,
        )
        for closer in closers:
            try:
                closer()
            except (KafkaError, PyMongoError, OSError) as error:
                log.warning("closing the sink: %s", error)


def _unencodable(documents: list[dict[str, Any]]) -> dict[int, str]:
    """Documents BSON cannot encode (index -> why): looked for only after insert_many failed.

    insert_many fails as a whole on one such document; this finds it, so that the rest are
    stored and it alone is dead-lettered.
    """
    refused = {}
    for index, document in enumerate(documents):
        try:
            encode(document)
        except UNENCODABLE as error:
            refused[index] = f"cannot be encoded for MongoDB: {error}"
    return refused


def run_sink(
    sink: MongoSink,
    stop: threading.Event,
    *,
    until_idle: float | None = None,
    max_messages: int | None = None,
    progress: Progress | None = None,
    assignment_timeout: float = 120.0,
) -> SinkStats:
    """Consume until `stop`, `max_messages`, or `until_idle` seconds without a message.

    Idle time counts only once partitions are assigned: after a crash, the group waits
    for the dead member's session to expire before handing its partitions over.
    """
    progress = progress or Progress("sink")

    def extra() -> dict[str, float]:
        s = sink.stats
        return {
            "inserted": s.inserted,
            "duplicates": s.duplicates,
            "dead_lettered": s.dead_lettered,
            "write_retries": s.write_retries,
            "skipped_offsets": s.skipped_offsets,
            "late": s.late,
            NEWEST_STORED: s.newest_stored_event_ms,
            **s.write_percentiles(),
            "lag": sink.lag(),
        }

    started = time.monotonic()
    idle_since: float | None = None
    while not stop.is_set():
        remaining = None if max_messages is None else max_messages - sink.stats.consumed
        if remaining is not None and remaining <= 0:
            break
        try:
            got = sink.poll_once(stop, limit=remaining)
        except SinkStopped:
            break
        now = time.monotonic()
        if got or not sink.consumer.assignment():
            idle_since = None
            if not got and until_idle is not None and now - started > assignment_timeout:
                raise PlatformError(
                    f"no partition of {sink.settings.kafka_topic} was assigned within "
                    f"{assignment_timeout:.0f}s: is the topic there, and is another member "
                    f"of group {sink.settings.kafka_consumer_group} holding every partition?"
                )
        elif until_idle is not None:
            idle_since = idle_since or now
            if now - idle_since >= until_idle:
                break
        progress.maybe_report(sink.stats.consumed, extra)
    with contextlib.suppress(SinkStopped):  # stopped during an outage: nothing to flush
        sink.flush()
    progress.emit(sink.stats.consumed, extra)
    return sink.stats
