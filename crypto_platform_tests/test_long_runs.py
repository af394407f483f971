"""What a long-running process keeps stays bounded, however long it runs."""

from __future__ import annotations

from crypto_platform.sources.base import MAX_SKIP_REASONS, OTHER_REASONS, SourceStats
from crypto_platform.spark.job import BATCH_HISTORY, QueryTotals


def progress(batch_id: int) -> dict:
    return {"batchId": batch_id, "numInputRows": 10, "durationMs": {"triggerExecution": 900}}


def test_the_spark_job_counts_every_batch_once_and_keeps_a_bounded_history() -> None:
    totals = QueryTotals()
    batches = 3 * BATCH_HISTORY  # about eight hours of one batch a second

    for batch_id in range(batches):
        # recentProgress lists the last few batches again at every poll
        for recent in range(max(0, batch_id - 2), batch_id + 1):
            totals.add(progress(recent))

    assert totals.batches == batches and totals.input_rows == 10 * batches
    assert len(totals.batch_durations_ms) == BATCH_HISTORY


def test_a_source_fed_ever_new_bad_values_keeps_a_bounded_count_of_reasons() -> None:
    stats = SourceStats()

    for number in range(10_000):
        stats.skip("binance", f"unknown symbol 'COIN{number}USDT'")

    assert stats.skipped == 10_000
    assert len(stats.skip_reasons) == MAX_SKIP_REASONS + 1
    assert stats.skip_reasons[OTHER_REASONS] == 10_000 - MAX_SKIP_REASONS
