"""A MongoDB outage is waited out; the progress count (what Dagster reports) never raises."""

from __future__ import annotations

import threading
import time

from pymongo import MongoClient

from crypto_platform.settings import Settings
from crypto_platform.stack import LocalStack
from crypto_platform.streaming.sink import MongoSink, run_sink
from crypto_platform_tests.conftest import run_cli


def test_outage_is_waited_out_and_the_progress_count_never_raises(
    stack: LocalStack, settings: Settings
) -> None:
    produced = run_cli(settings, "produce", "--source", "simulated", "--count", "200")
    assert produced.returncode == 0, produced.stderr
    sink = MongoSink(settings)
    mongo = next(server for server in stack.servers if server.name == "mongodb")
    mongo.process.stop()
    stop = threading.Event()
    worker = threading.Thread(target=run_sink, args=(sink, stop), kwargs={"until_idle": 3})
    try:
        worker.start()
        time.sleep(3)
        assert sink.document_count() == -1  # what progress reports show: no exception
        assert worker.is_alive()
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
