"""Backfill: each source's history fills its gaps through Kafka and the sink, idempotently."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from crypto_platform.candles import INTERVALS
from crypto_platform.completeness.backfill import backfill
from crypto_platform.completeness.history.binance import KLINES
from crypto_platform.completeness.history.simulated import SimulatedHistory
from crypto_platform.completeness.history.weight import WeightBudget
from crypto_platform.completeness.ledger import find_gaps
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra, cassandra_queries, mongo
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.fake_internet import (
    FakeApi,
    FakeCoinHistory,
    FakeKlines,
    Reply,
    coinranking_coin,
    coinranking_page,
    fake_api,
)
from crypto_platform_tests.streaming_helpers import read_topic, sink_until_idle, topic_size
from crypto_platform_tests.test_gaps import gaps, iso, store

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        yield server


def live(
    source: str, symbol: str, times: Iterable[int], price: float = 100.0, **extra: Any
) -> list[Tick]:
    return [
        Tick.build(
            source=source, symbol=symbol, price=price, event_time_ms=t, ingest_time_ms=t, **extra
        )
        for t in times
    ]


def around(start_ms: int, hole: tuple[int, int], end_ms: int) -> list[range]:
    """Tick times every 2 s from `start_ms` to `end_ms` (included), none in `hole`."""
    return [range(start_ms, hole[0], 2_000), range(hole[1], end_ms + 1, 2_000)]


def sent(settings: Settings) -> list[Tick]:
    ticks = [Tick.from_json(record.value) for record in read_topic(settings, settings.kafka_topic)]
    return sorted(ticks, key=lambda tick: (tick.symbol, tick.event_time_ms))


def kline_close(market: str, close_ms: int) -> float:
    return 64_000 + close_ms // SECOND_MS % 1_000 / 8


def test_binance_gap_is_filled_from_klines_within_the_weight_budget_and_only_once(
    settings: Settings, api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings.model_copy(update={"binance_base_url": api.url})
    now = now_ms()
    t0 = now - now % MINUTE_MS - 50 * MINUTE_MS
    end = t0 + 45 * MINUTE_MS
    hole = (t0 + 5 * MINUTE_MS, t0 + 40 * MINUTE_MS)  # 35 minutes: 2,102 1-s klines, 3 pages
    before, after = around(t0, hole, end)
    store(settings, live("binance", "BTC", before) + live("binance", "BTC", after))
    api.script(KLINES, Reply(429, {"code": -1003, "msg": "Too much weight"}, {"Retry-After": "1"}))
    api.answer(KLINES, FakeKlines(kline_close, used_weight=lambda n: 5_999))  # near 6,000
    budget = WeightBudget(window_s=1.0)  # a minute's budget in a second: the test stays fast

    stats = backfill(settings, t0, end, ["BTC"], weight_budget=budget)

    (fill,) = stats.filled
    gap = fill.gap
    assert (gap.source, gap.symbol) == ("binance", "BTC")
    assert (gap.start_ms, gap.end_ms) == (hole[0] - 1_999, hole[1])  # from the tick before it
    closes = range(hole[0] - 1_001, hole[1], SECOND_MS)  # every 1-s kline that closes in the gap
    ticks = sent(settings)
    assert [(t.event_time_ms, t.price) for t in ticks] == [
        (close, float(f"{kline_close('BTCUSDT', close):.8f}")) for close in closes
    ]
    assert {(t.source, t.symbol, t.quote, t.backfilled) for t in ticks} == {
        ("binance", "BTC", "USDT", True)
    }
    assert (fill.fetched, fill.already_stored, fill.sent) == (len(closes), 0, len(closes))
    assert fill.unrepairable is None
    hits = api.hits(KLINES)
    assert len(hits) == 4  # the 429, then three pages
    assert hits[1].at - hits[0].at >= 0.95  # its Retry-After
    assert {(h.query["symbol"][0], h.query["interval"][0], h.query["limit"][0]) for h in hits} == {
        ("BTCUSDT", "1s", "1000")
    }
    assert hits[2].query["startTime"] == [str(hole[0] - 2_000 + 1_000 * SECOND_MS)]  # page 2
    assert budget.waits >= 1  # 5,999 of 6,000 used: the next request waited for the next window
    assert "request weight used this minute; waiting" in caplog.text

    sink_until_idle(settings)

    (row,) = gaps(settings, t0, end)
    assert (row["source"], row["status"]) == ("binance", "repaired")
    size = topic_size(settings, settings.kafka_topic)
    again = run_cli(
        settings, "backfill", "--since", iso(t0), "--until", iso(end), "--symbols", "BTC"
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["message"] == "nothing to backfill: 1 gap in the span, none open (1 repaired)"
    assert summary["sent"] == 0 and "then" not in summary
    assert len(api.hits(KLINES)) == 4 and topic_size(settings, settings.kafka_topic) == size


def test_candles_of_a_backfilled_span_agree_with_binance_klines(
    settings: Settings, api: FakeApi
) -> None:
    settings = settings.model_copy(update={"binance_base_url": api.url})
    now = now_ms()
    t0 = now - now % (5 * MINUTE_MS) - 60 * MINUTE_MS
    hole = (t0 + 5 * MINUTE_MS, t0 + 15 * MINUTE_MS)  # ten 1-minute, two 5-minute candles
    end = t0 + 40 * MINUTE_MS  # the stream has closed the hole's candles: a watermark later
    store(
        settings,
        [tick for times in around(t0, hole, end) for tick in live("binance", "BTC", times)],
    )
    api.answer(KLINES, FakeKlines(kline_close, intervals=("1s", "1m", "5m")))
    backfill(settings, t0, end, ["BTC"])
    sink_until_idle(settings)

    # Behind the watermark, backfilled ticks reach Cassandra through the repair.
    repaired = run_cli(settings, "repair", "--since", iso(hole[0]), "--until", iso(hole[1]))

    assert repaired.returncode == 0, repaired.stderr
    cluster, session = cassandra.connect(settings)
    try:
        for interval in ("1m", "5m"):
            answer = requests.get(
                api.url + KLINES,
                params={"symbol": "BTCUSDT", "interval": interval, "startTime": hole[0],
                        "endTime": hole[1] - INTERVALS[interval]},
                timeout=5,
            ).json()  # fmt: skip
            klines = {kline[0]: tuple(float(price) for price in kline[1:5]) for kline in answer}
            candles = list(
                cassandra_queries.candles(
                    session, settings.cassandra_keyspace, ("BTC", "binance"), interval, *hole
                )
            )
            stored = {row["start"]: (row["open"], row["high"], row["low"], row["close"])
                      for row in candles}  # fmt: skip
            assert len(klines) == (hole[1] - hole[0]) // INTERVALS[interval]
            assert stored == klines, interval
            assert {row["tick_count"] for row in candles} == {INTERVALS[interval] // SECOND_MS}
    finally:
        cluster.shutdown()


def coin_price(timestamp_s: int) -> float | None:
    return None if timestamp_s % 10 == 6 else 3_000 + timestamp_s % 100 / 4  # some nulls


def test_coinranking_fills_a_recent_gap_and_marks_an_old_one_unrepairable(
    settings: Settings, api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings.model_copy(
        update={"coinranking_base_url": api.url, "coinranking_api_key": SecretStr("secret-key")}
    )
    history = FakeCoinHistory(coin_price, {"1h": 2, "3h": 2, "12h": 60, "24h": 300, "7d": 3_600})
    api.answer("/coin/uuid-ETH/history", history)
    api.answer("/coin/uuid-BTC/history", history)
    api.script("/coins", Reply(body=coinranking_page([coinranking_coin("BTC", "64000.25")])))
    now = now_ms()
    recent = now - now % MINUTE_MS - 20 * MINUTE_MS
    recent_hole = (recent + 5 * MINUTE_MS, recent + 8 * MINUTE_MS)
    recent_end = recent + 10 * MINUTE_MS
    old = now - now % HOUR_MS - 48 * HOUR_MS  # Coinranking's 7d period, at hourly points
    old_hole = (old + 5 * MINUTE_MS, old + 3 * HOUR_MS + 5 * MINUTE_MS)
    old_end = old + 3 * HOUR_MS + 10 * MINUTE_MS
    for times in around(recent, recent_hole, recent_end):  # ETH's ticks carry its uuid
        store(settings, live("coinranking", "ETH", times, 3_000.0, uuid="uuid-ETH"))
    for times in around(old, old_hole, old_end):  # BTC's do not: asked from /coins
        store(settings, live("coinranking", "BTC", times, 64_000.0))

    (eth,) = backfill(settings, recent, recent_end).filled
    (btc,) = backfill(settings, old, old_end).filled

    assert (eth.unrepairable, eth.granularity_ms, eth.already_stored) == (None, 2_000, 0)
    assert btc.unrepairable == (
        "Coinranking's 7d history has a point every 1 h; the gap needs one every 6 s at most"
    )
    ticks = sent(settings)
    eth_points = [t for t in range(recent_hole[0], recent_hole[1], 2_000) if coin_price(t // 1000)]
    assert [(t.event_time_ms, t.price) for t in ticks if t.symbol == "ETH"] == [
        (at, coin_price(at // 1000)) for at in eth_points
    ]
    assert [t.event_time_ms for t in ticks if t.symbol == "BTC"] == [
        old + h * HOUR_MS for h in (1, 2, 3)
    ]
    assert {(t.source, t.backfilled, t.quote) for t in ticks} == {("coinranking", True, "USD")}
    assert {t.symbol: t.uuid for t in ticks} == {"ETH": "uuid-ETH", "BTC": "uuid-BTC"}
    assert [h.query["timePeriod"] for h in api.hits("/coin/uuid-ETH/history")] == [["1h"]]
    assert [h.query["timePeriod"] for h in api.hits("/coin/uuid-BTC/history")] == [["7d"]]
    assert [h.query["symbols[]"] for h in api.hits("/coins")] == [["BTC"]]
    assert {h.headers["x-access-token"] for h in api.requests} == {"secret-key"}
    assert "secret-key" not in caplog.text

    sink_until_idle(settings)

    (filled,) = find_gaps(settings, recent, recent_end)
    (judged,) = find_gaps(settings, old, old_end)
    assert (filled.symbol, filled.status) == ("ETH", "repaired")
    assert (judged.symbol, judged.status) == ("BTC", "unrepairable")
    assert judged.reason == btc.unrepairable


def test_simulated_gap_is_regenerated_the_same_every_time(settings: Settings) -> None:
    now = now_ms()
    t0 = now - now % MINUTE_MS - 20 * MINUTE_MS
    hole, end = (t0 + 5 * MINUTE_MS, t0 + 8 * MINUTE_MS), t0 + 10 * MINUTE_MS
    before, after = around(t0, hole, end)
    store(
        settings, live("simulated", "BTC", before, 100.0) + live("simulated", "BTC", after, 110.0)
    )

    first = run_cli(settings, "backfill", "--since", iso(t0), "--until", iso(end))

    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    repair = f"crypto-platform repair --since {iso(t0)} --until {iso(end)}"
    assert summary["then"] == f"once the sink has stored them: {repair}"
    assert summary["message"] == "sent 90 ticks for 1 open gap"
    ticks = sent(settings)
    assert [t.event_time_ms for t in ticks] == list(range(hole[0], hole[1], 2_000))
    assert {(t.source, t.symbol, t.backfilled) for t in ticks} == {("simulated", "BTC", True)}
    assert min(t.price for t in ticks) > 99 and max(t.price for t in ticks) < 111  # 100 to 110
    client = mongo.connect(settings)
    try:
        history = SimulatedHistory(settings, mongo.prices_collection(client, settings))
        (gap,) = find_gaps(settings, t0, end)  # open until the sink has stored the ticks
        regenerated = history.fetch(gap).ticks
    finally:
        client.close()
    assert [(t.identity, t.price) for t in regenerated] == [(t.identity, t.price) for t in ticks]

    sink_until_idle(settings)
    second = backfill(settings, t0, end)

    assert second.filled == [] and second.statuses == {"repaired": 1}
    assert len(sent(settings)) == len(ticks)
