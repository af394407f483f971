"""Sources' histories without a server of ours: klines, periods, the bridge, the weight budget."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from crypto_platform.completeness.gaps import Gap
from crypto_platform.completeness.history.binance import KLINES, BinanceHistory, kline_tick
from crypto_platform.completeness.history.coinranking import history_points, period_for
from crypto_platform.completeness.history.model import too_coarse
from crypto_platform.completeness.history.simulated import bridge
from crypto_platform.completeness.history.weight import WeightBudget
from crypto_platform.settings import load_settings
from crypto_platform.ticks import InvalidTick
from crypto_platform_tests.fake_internet import FakeApi, FakeKlines, fake_api

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        yield server


def test_a_kline_is_a_tick_priced_at_its_close_at_its_close_time() -> None:
    kline = [1_763_700_000_000, "64000.1", "64010.0", "63990.5", "64005.25", "1.5",
             1_763_700_000_999, "96007.9", 12, "0.7", "44803.7", "0"]  # fmt: skip

    gap = Gap("binance-ws", "BTC", 1_763_699_990_001, 1_763_700_010_000, 4)

    tick = kline_tick(kline, gap, fetched_ms=1_763_700_060_000)

    assert (tick.source, tick.symbol, tick.price, tick.quote) == (
        "binance-ws",
        "BTC",
        64005.25,
        "USDT",
    )
    assert (tick.event_time_ms, tick.backfilled) == (1_763_700_000_999, True)
    with pytest.raises(InvalidTick):
        kline_tick(kline[:5], gap, fetched_ms=1_763_700_060_000)
    with pytest.raises(InvalidTick, match="price"):
        kline_tick([*kline[:4], "abc", *kline[5:]], gap, fetched_ms=1_763_700_060_000)


def test_the_shortest_coinranking_period_that_reaches_the_gap_is_chosen() -> None:
    now = 1_763_700_000_000

    assert period_for(now - 30 * 60_000, now) == "1h"
    assert period_for(now - HOUR_MS, now) == "1h"
    assert period_for(now - HOUR_MS - 1, now) == "3h"
    assert period_for(now - 2 * DAY_MS, now) == "7d"
    assert period_for(now - 200 * DAY_MS, now) == "1y"
    assert period_for(now - 6 * 365 * DAY_MS, now) is None


def test_coinranking_history_points_skip_nulls_and_come_oldest_first() -> None:
    payload = {"status": "success", "data": {"change": "1.2", "history": [
        {"price": "64010.5", "timestamp": 1_700_000_004},
        {"price": None, "timestamp": 1_700_000_002},
        {"price": "64000.0", "timestamp": 1_700_000_000},
    ]}}  # fmt: skip

    points, nulls = history_points(payload)

    assert points == [(1_700_000_000_000, "64000.0"), (1_700_000_004_000, "64010.5")]
    assert nulls == 1


def test_a_history_coarser_than_the_detection_says_why() -> None:
    reason = too_coarse("Coinranking's 7d history", HOUR_MS, 6_000)

    assert reason == (
        "Coinranking's 7d history has a point every 1 h; the gap needs one every 6 s at most"
    )
    assert too_coarse("Binance's 1s klines of BTCUSDT", 1_000, 6_000) is None


def test_the_bridge_is_seeded_and_joins_its_ends() -> None:
    times = list(range(2_000, 180_000, 2_000))
    before, after = (0, 100.0), (180_000, 110.0)

    calm = bridge(times, before, after, 0.0, seed=1)
    first, again, other = (bridge(times, before, after, 0.9, seed=s) for s in (7, 7, 8))

    assert calm == pytest.approx([100 * 1.1 ** (t / 180_000) for t in times])
    assert first == again and first != other
    assert abs(math.log(first[-1] / 110.0)) < 0.01  # two seconds from the far end
    walk = bridge(times, before, None, 0.9, seed=7)
    assert bridge(times[:10], before, None, 0.9, seed=7) == walk[:10]  # an open gap's prefix


def test_the_weight_budget_waits_for_the_next_window_rather_than_exceed() -> None:
    budget = WeightBudget(limit=10, window_s=1.0)
    budget.spend(2)
    budget.observe({"X-MBX-USED-WEIGHT-1M": "8"})
    window = int(time.time())

    budget.spend(2)  # 8 + 2 = 10: within
    assert budget.waits == 0
    budget.spend(2)  # 12: over

    assert budget.waits == 1 and 0 < budget.waited_s <= 1.0
    assert int(time.time()) > window and budget.used == 2


def test_binance_falls_back_to_minute_klines_and_says_they_are_too_coarse(api: FakeApi) -> None:
    api.answer(KLINES, FakeKlines(lambda market, ms: 3_000 + ms % 7, intervals=("1m",)))
    settings = load_settings().model_copy(update={"binance_base_url": api.url})
    now = int(time.time() * 1000)
    start = now - now % 60_000 - 30 * 60_000
    history = BinanceHistory(settings)
    try:
        result = history.fetch(Gap("binance", "ETH", start + 1, start + 10 * 60_000, 299))
    finally:
        history.close()

    assert [t.event_time_ms for t in result.ticks] == [start + m * 60_000 - 1 for m in range(1, 11)]
    assert all(t.backfilled and t.symbol == "ETH" for t in result.ticks)
    assert [hit.query["interval"] for hit in api.hits(KLINES)] == [["1s"], ["1m"]]
    assert api.hits(KLINES)[0].query["symbol"] == ["ETHUSDT"]
    assert result.unrepairable == (
        "Binance's 1m klines of ETHUSDT has a point every 1 min; "
        "the gap needs one every 6 s at most"
    )
