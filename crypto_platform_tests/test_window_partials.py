"""The windows' partial sums: however a stream is cut into batches, the merged windows agree."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto_platform.spark.windowed_means import (
    PARTIAL_NAMES,
    WINDOW_KEY,
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
