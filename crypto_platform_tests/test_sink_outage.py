"""A MongoDB outage is waited out, yet every stop is bounded; progress never raises."""

from __future__ import annotations

import threading
import time

from pymongo import MongoClient

from crypto_platform.settings import Settings
from crypto_platform.stack import LocalStack
from crypto_platform.streaming.progress import Progress, Snapshot
from crypto_platform.streaming.sink import MongoSink, run_sink
from crypto_platform.ticks import now_ms
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.streaming_helpers import (
    committed_offsets,
    sink_until_idle,
    stored_count,
    wait_for,
)

CLOSE_BOUND_S = 15.0


def produce(settings: Settings, count: int) -> None:
    produced = run_cli(settings, "produce", "--source", "simulated", "--count", str(count))
    assert produced.returncode == 0, produced.stderr


def test_outage_is_waited_out_and_the_progress_count_never_raises(
    stack: LocalStack, settings: Settings
) -> None:
    produce(settings, 200)
    sink = MongoSink(settings)
    mongo = next(server for server in stack.servers if server.name == "mongodb")
    mongo.process.stop()
    stop = threading.Event()
    snapshots: list[Snapshot] = []
    worker = threading.Thread(
        target=run_sink,
        args=(sink, stop),
        kwargs={"until_idle": 3, "progress": Progress("sink", snapshots.append)},
    )
    try:
        worker.start()
        wait_for(lambda: sink.stats.write_retries > 0, 60, "a write retried")
        time.sleep(2)
        assert sink.document_count() == -1  # what progress reports show: no exception
        assert worker.is_alive()
        back_at = now_ms()
        stack.up()
        worker.join(120)
        assert not worker.is_alive()
    finally:
        stop.set()
        worker.join(30)
        sink.close()

    assert sink.stats.inserted == 200 and sink.stats.write_retries > 0
    with MongoClient(settings.mongo_uri) as client:
        documents = list(client[settings.mongo_database][settings.mongo_collection].find())
    assert len(documents) == 200
    # Each document says when it was handed to MongoDB (during the outage for the first
    # batch); the write itself, up to the acknowledgement after the outage, is the sink's
    # write time.
    assert not any("stored_at_ms" in document for document in documents)
    first_handed = min(document["handed_at_ms"] for document in documents)
    assert first_handed < back_at
    assert snapshots[-1]["write_ms_p99"] >= back_at - first_handed


def test_close_during_an_outage_is_bounded_and_commits_nothing(
    stack: LocalStack, settings: Settings
) -> None:
    produce(settings, 200)
    sink = MongoSink(settings, retry_initial=0.1, retry_max=0.5)
    mongo = next(server for server in stack.servers if server.name == "mongodb")
    mongo.process.stop()
    # No stop event is ever set: as after an error, close() alone must end the wait.
    never = threading.Event()
    closer = threading.Thread(target=sink.close, daemon=True)
    try:
        wait_for(lambda: sink.poll_once(never) > 0, 60, "a batch handed to the writer")
        wait_for(lambda: sink.stats.write_retries > 0, 60, "a write retried")
        closer.start()
        closer.join(CLOSE_BOUND_S)
        assert not closer.is_alive(), f"close() still blocked after {CLOSE_BOUND_S:.0f}s"
        assert set(committed_offsets(settings).values()) == {None}
    finally:
        stack.up()
        if closer.is_alive():
            closer.join(120)

    stats = sink_until_idle(settings)  # nothing was lost: all redelivered and stored
    assert stats.consumed == 200 and stored_count(settings) == 200
