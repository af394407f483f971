"""`bench --scale`: the generated history, its windows chunk by chunk, the timing and results."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pymongo import MongoClient

from crypto_platform.bench.scale import time_round, timed_items
from crypto_platform.bench.scale_history import (
    HANDOVER_DELAY_MS,
    INGEST_DELAY_MS,
    STEP_MS,
    Loader,
    Span,
    chunk_rows,
    documents,
    tick_times,
)
from crypto_platform.bench.scale_report import NOISE_FLOOR_S, markdown, results
from crypto_platform.reports.checks import CHECKS
from crypto_platform.settings import Settings
from crypto_platform.storage.mongo_queries import HANDED_AT
from crypto_platform.ticks import Tick, now_ms

HOUR_MS = 3_600_000
T0 = 1_780_000_000_000  # on the whole-second grid


def test_history_has_one_tick_a_second_whatever_the_chunks() -> None:
    symbols = ["BTC", "ETH", "SOL"]

    def times(start: int, end: int) -> list[int]:
        return sorted(t for i in range(3) for t in tick_times(symbols, i, start, end).tolist())

    whole = times(T0, T0 + HOUR_MS)
    assert whole == list(range(T0, T0 + HOUR_MS, STEP_MS))
    assert times(T0, T0 + 7_000) + times(T0 + 7_000, T0 + HOUR_MS) == whole


def test_documents_are_those_the_sink_writes() -> None:
    times = np.array([T0, T0 + 3_000, T0 + 6_000], dtype=np.int64)
    docs = documents("ETH", times)

    for doc in docs:
        ms = doc["event_time_ms"]
        tick = Tick.build(source="simulated", symbol="ETH", price=doc["price"], event_time_ms=ms,
                          ingest_time_ms=ms + INGEST_DELAY_MS)  # fmt: skip
        handed = ms + INGEST_DELAY_MS + HANDOVER_DELAY_MS
        assert doc == tick.to_document() | {HANDED_AT: handed}
    assert len({doc["_id"] for doc in docs}) == 3


def windows_by_key(columns: dict[str, list]) -> dict[tuple, tuple]:
    keys = zip(columns["symbol"], columns["window_start_ms"], strict=True)
    values = zip(columns["tick_count"], columns["arithmetic_mean"], columns["harmonic_mean"],
                 strict=True)  # fmt: skip
    return dict(zip(keys, values, strict=True))


def test_windows_written_chunk_by_chunk_equal_those_of_the_whole_history() -> None:
    """Loaded backwards 20 minutes at a time, then topped up: each window's last write.

    It equals the window of the whole span, and holds every stored tick it should.
    """
    settings = Settings()
    edges = [T0 + minute * 60_000 for minute in (60, 40, 20, 0)]
    written: dict[tuple, tuple] = {}
    stored = Span(edges[0], edges[0])
    for end, start in itertools.pairwise(edges):  # older and older
        stored = Span(start, stored.end_ms)
        written |= windows_by_key(chunk_rows(settings, Span(start, end), stored)[1])
    stored = Span(stored.start_ms, edges[0] + 7 * 60_000)  # the top-up to "now"
    written |= windows_by_key(chunk_rows(settings, Span(edges[0], stored.end_ms), stored)[1])

    whole = windows_by_key(chunk_rows(settings, stored, stored)[1])
    assert written.keys() == whole.keys()
    for key, value in whole.items():
        assert written[key] == pytest.approx(value, rel=1e-12), key
    for (symbol, start), (count, mean, harmonic) in whole.items():
        index = settings.symbols.index(symbol)
        held = tick_times(settings.symbols, index, max(start, stored.start_ms),
                          min(start + 300_000, stored.end_ms))  # fmt: skip
        assert count == len(held) and mean >= harmonic


def test_results_name_the_worst_ratio_and_the_slowest_item() -> None:
    run = {
        "wanted": [1_000, 10_000],
        "sizes": [
            {"ticks": 1_000, "span_days": 0.0, "load_s_total": 1.0,
             "seconds": {"check a": 0.001, "check b": 1.0, "report c": 2.0},
             "checks_passed": {"check a": True, "check b": True}},
            {"ticks": 8_000, "span_days": 0.1, "load_s_total": 9.0,
             "seconds": {"check a": 0.04, "check b": 1.6, "report c": 2.2},
             "checks_passed": {"check a": True, "check b": False}},
        ],
    }  # fmt: skip
    result = results(run, quick=True)

    assert NOISE_FLOOR_S == 0.05  # check a: 0.001 s then 0.04 s, both under the floor
    assert [row["ratio"] for row in result["rows"]] == [1.0, 1.6, 1.1]
    assert (result["scale_slowest_ratio"], result["scale_slowest_ratio_of"]) == (1.6, "check b")
    assert (result["scale_slowest_s"], result["scale_slowest_s_of"]) == (2.2, "report c")
    assert result["targets_met"] == {"scale_slowest_ratio": False, "scale_slowest_s": True}
    table = markdown(result)
    assert (
        "of 10,000 wanted" in table and "| check b | 1.000 | 1.600 | 1.6 | true, false |" in table
    )


def test_every_check_and_every_report_is_timed() -> None:
    names = [item.name for item in timed_items()]

    assert len(set(names)) == len(CHECKS) + 4
    assert {"report storage", "report throughput", "report statistics",
            "hourly completeness"} <= set(names)  # fmt: skip


def test_every_check_passes_on_loaded_history_and_every_item_is_timed(
    settings: Settings,
) -> None:
    loader = Loader(settings, now_ms() // STEP_MS * STEP_MS - 5 * 60_000)
    try:
        loader.back(3 * 3600, lambda: True)  # three hours
        loader.forward(now_ms() // STEP_MS * STEP_MS)
    finally:
        loader.close()
    items = timed_items()
    measured = time_round(settings, items, repeats=1)

    with MongoClient(settings.mongo_uri) as client:
        stored = client[settings.mongo_database][settings.mongo_collection].count_documents({})
    assert stored == loader.span.ticks >= 3 * 3600
    assert measured["checks_passed"] == {item.name: True for item in items[: len(CHECKS)]}
    assert set(measured["seconds"]) == {item.name for item in items}
