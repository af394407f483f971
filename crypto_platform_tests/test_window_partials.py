"""The windows' partial sums: however a stream is cut into batches, the merged windows agree."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto_platform.candles import INTERVALS, candle_start
from crypto_platform.spark.windowed_means import (
    CANDLE_KEY,
    PARTIAL_NAMES,
    WINDOW_KEY,
    batch_candles,
    batch_partials,
    current_window,
    current_window_keys,
    from_arrow,
    merge_partials,
    to_arrow,
)

WINDOW_MS, SLIDE_MS = 300_000, 60_000

# Per coin, distinct event times (a tick's identity), prices from cents to beyond a million.
ticks = st.lists(
    st.tuples(
        st.sampled_from(["BTC", "ETH", "S0001", "Ünï"]),
        st.integers(0, 20 * SLIDE_MS),
        st.floats(1e-6, 1e7, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=60,
    unique_by=lambda tick: (tick[0], tick[1]),
)
# pandas' first call of a kind can take a while on a busy machine: no per-example deadline.
patient = settings(deadline=None)


def partials(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["symbol", "event_time_ms", "price"])
    return batch_partials(frame, WINDOW_MS, SLIDE_MS, by=["symbol"]).reset_index()


@patient
@given(ticks, st.data())
def test_two_batches_merged_are_the_windows_of_all_the_ticks(
    rows: list[tuple[str, int, float]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(1, len(rows)))
    earlier, later = rows[:cut], rows[cut:]
    whole = partials(rows).set_index(WINDOW_KEY)

    merged = merge_partials(partials(earlier), partials(later)) if later else partials(earlier)

    merged = merged.set_index(WINDOW_KEY).loc[whole.index]
    exact = ["tick_count", "min_price", "max_price", "first_ms", "first_price", "last_ms",
             "last_price"]  # fmt: skip
    pd.testing.assert_frame_equal(merged[exact], whole[exact], check_dtype=False)
    for column in ("price_sum", "log_sum", "inverse_sum"):
        pd.testing.assert_series_equal(merged[column], whole[column], rtol=1e-9)


@patient
@given(ticks)
def test_a_bucket_table_survives_its_state_bytes(rows: list[tuple[str, int, float]]) -> None:
    table = partials(rows)

    again = from_arrow(to_arrow(table))

    pd.testing.assert_frame_equal(again, table[[*WINDOW_KEY, *PARTIAL_NAMES]])


@patient
@given(ticks)
def test_each_coin_s_current_window_is_the_one_rule_s(rows: list[tuple[str, int, float]]) -> None:
    table = partials(rows)
    symbols = set(table["symbol"])

    keys = current_window_keys(table, symbols)

    expected = {
        (symbol, current_window(dict(zip(group["start"], group["last_ms"], strict=True))))
        for symbol, group in table.groupby("symbol")
    }
    assert keys == expected


# Ticks over three days, so every interval has candles that end and candles that go on.
days_of_ticks = st.lists(
    st.tuples(
        st.sampled_from(["BTC", "ETH"]),
        st.integers(0, 3 * INTERVALS["1d"]),
        st.floats(1e-6, 1e7, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=80,
    unique_by=lambda tick: (tick[0], tick[1]),
)


def candles(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["symbol", "event_time_ms", "price"])
    return batch_candles(frame, list(INTERVALS.values()))


@patient
@given(days_of_ticks, st.data())
def test_candles_of_two_batches_merged_are_open_high_low_close_of_all_the_ticks(
    rows: list[tuple[str, int, float]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(1, len(rows)))
    earlier, later = rows[:cut], rows[cut:]

    merged = (
        merge_partials(candles(earlier), candles(later), CANDLE_KEY) if later else candles(rows)
    )

    members: dict[tuple[int, str, int], list[tuple[int, float]]] = {}
    for symbol, moment, price in rows:
        for name, length in INTERVALS.items():
            key = (length, symbol, candle_start(moment, name))
            members.setdefault(key, []).append((moment, price))
    expected = {
        key: (min(ticks)[1], max(p for _, p in ticks), min(p for _, p in ticks), max(ticks)[1],
              len(ticks))
        for key, ticks in members.items()
    }  # fmt: skip
    got = {
        (row.interval_ms, row.symbol, row.start): (
            row.first_price,
            row.max_price,
            row.min_price,
            row.last_price,
            row.tick_count,
        )
        for row in merged.itertuples()
    }
    assert got == expected
