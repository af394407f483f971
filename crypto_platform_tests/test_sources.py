"""Every price source against payloads shaped like the real APIs, and each failure mode."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crypto_platform.errors import ConfigurationError
from crypto_platform.resilience import RetryPolicy
from crypto_platform.settings import load_settings
from crypto_platform.sources import build_source
from crypto_platform.sources.binance import BinanceRestSource
from crypto_platform.sources.binance_ws import BinanceWebSocketSource
from crypto_platform.sources.coinranking import CoinrankingSource
from crypto_platform.sources.http import SourceUnavailable
from crypto_platform.sources.replay import ReplaySource
from crypto_platform.sources.simulated import HighWaterMarkError, SimulatedSource
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.fake_internet import (
    FakeApi,
    FakeBinanceStream,
    Reply,
    binance_ticker,
    coinranking_coin,
    coinranking_page,
    fake_api,
    mini_ticker,
)

TICKER = "/api/v3/ticker/24hr"
GOOD = Reply(body=[binance_ticker("BTCUSDT", "64000.10"), binance_ticker("ETHUSDT", "3200.5")])


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        yield server


FAST = RetryPolicy(backoff_initial=0.01, backoff_max=0.05)


def binance(api: FakeApi, **http: object) -> BinanceRestSource:
    options: dict[str, object] = {"policy": FAST, "timeout": 1.0}
    return BinanceRestSource(["BTC", "ETH"], api.url, 0.05, **{**options, **http})


def first_batches(source, count: int, timeout: float = 10.0) -> list[list[Tick]]:
    """The first `count` batches a source yields (the loop is stopped afterwards)."""
    stop = threading.Event()
    batches: list[list[Tick]] = []
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    try:
        for batch in source.batches(stop):
            batches.append(batch)
            if len(batches) >= count:
                break
    finally:
        stop.set()
        timer.cancel()
        source.close()
    return batches


def test_binance_fetches_all_symbols_in_one_request(api: FakeApi) -> None:
    api.script(TICKER, GOOD)

    ticks = binance(api).poll()

    assert [(t.symbol, t.price, t.quote, t.source) for t in ticks] == [
        ("BTC", 64000.10, "USDT", "binance"),
        ("ETH", 3200.5, "USDT", "binance"),
    ]
    assert ticks[0].event_time_ms == 1_763_700_000_000
    assert ticks[0].change_24h_pct == -0.95
    assert api.hits(TICKER)[0].query["symbols"] == ['["BTCUSDT","ETHUSDT"]']


def test_binance_skips_and_counts_bad_records(api: FakeApi) -> None:
    api.script(
        TICKER,
        Reply(
            body=[
                binance_ticker("BTCUSDT", "64000.10"),
                {**binance_ticker("ETHUSDT", "1"), "lastPrice": None},
                binance_ticker("ETHUSDT", "abc"),
                binance_ticker("ETHUSDT", "-5"),
                binance_ticker("DOGEUSDT", "0.1"),
                "not an object",
            ]
        ),
    )
    source = binance(api)

    ticks = source.poll()

    assert [t.symbol for t in ticks] == ["BTC"]
    assert source.stats.skipped == 5
    assert any("unknown symbol 'DOGEUSDT'" in reason for reason in source.stats.skip_reasons)


@pytest.mark.parametrize(
    "bad",
    [
        Reply(body="<html><body>502 Bad Gateway</body></html>"),
        Reply(body='[{"symbol": "BTCUSDT", "lastPri'),
    ],
    ids=["html-error-page", "truncated-json"],
)
def test_a_bad_answer_never_ends_the_loop(api: FakeApi, bad: Reply) -> None:
    api.script(TICKER, bad, GOOD)
    source = binance(api)

    with pytest.raises(SourceUnavailable):
        source.poll()
    batches = first_batches(source, 1)

    assert [t.symbol for t in batches[0]] == ["BTC", "ETH"]


@pytest.mark.parametrize("status", [429, 418])
def test_retry_after_is_honoured(api: FakeApi, status: int) -> None:
    api.script(TICKER, Reply(status, {"code": -1003}, {"Retry-After": "1"}), GOOD)

    ticks = binance(api).poll()

    first, second = api.hits(TICKER)
    assert second.at - first.at >= 0.95
    assert len(ticks) == 2


def test_server_errors_and_timeouts_are_retried_with_backoff(api: FakeApi) -> None:
    api.script(TICKER, Reply(503), Reply(delay=1.5, body=[]), GOOD)

    ticks = binance(api, timeout=0.5).poll()

    assert len(ticks) == 2
    assert len(api.hits(TICKER)) == 3


def test_circuit_opens_after_repeated_failures_then_half_opens(api: FakeApi) -> None:
    api.script(TICKER, Reply(500))
    source = binance(api, attempts=1, policy=RetryPolicy(0.01, 0.05, fail_max=3, reset_timeout=1.0))

    for _ in range(3):
        with pytest.raises(SourceUnavailable, match="HTTP 500"):
            source.poll()
    hits = len(api.hits(TICKER))
    with pytest.raises(SourceUnavailable, match="circuit open"):
        source.poll()
    assert len(api.hits(TICKER)) == hits  # failed fast, the server was not asked

    api.script(TICKER, GOOD)
    time.sleep(1.1)
    assert len(source.poll()) == 2  # half-open: one trial request, which succeeds


def test_unknown_binance_symbol_is_a_clear_configuration_error(api: FakeApi) -> None:
    api.script(TICKER, Reply(400, {"code": -1121, "msg": "Invalid symbol."}))

    with pytest.raises(ConfigurationError, match="CRYPTO_SYMBOLS"):
        binance(api).poll()


def test_coinranking_sends_the_key_and_maps_the_fields(api: FakeApi) -> None:
    api.script(
        "/coins",
        Reply(
            body=coinranking_page(
                [
                    coinranking_coin("BTC", "64000.25"),
                    coinranking_coin("ETH", None),
                    coinranking_coin("SOL", "150.5", marketCap=None, supply=None),
                ]
            )
        ),
    )
    source = CoinrankingSource(["BTC", "ETH", "SOL"], api.url, 1.0, api_key="secret-key")

    ticks = {tick.symbol: tick for tick in source.poll()}

    request = api.hits("/coins")[0]
    assert request.headers["x-access-token"] == "secret-key"
    assert request.query["symbols[]"] == ["BTC", "ETH", "SOL"]
    assert set(ticks) == {"BTC", "SOL"}
    btc = ticks["BTC"]
    assert (btc.price, btc.name, btc.uuid, btc.quote) == (64000.25, "Bitcoin", "uuid-BTC", "USD")
    assert (btc.market_cap, btc.volume_24h, btc.change_24h_pct) == (
        1282325872580,
        33221958102,
        -0.52,
    )
    assert (btc.number_of_markets, btc.total_supply) == (9712, 19790000)
    assert ticks["SOL"].market_cap is None
    assert source.stats.skipped == 1  # ETH's null price


def test_binance_websocket_streams_and_reconnects() -> None:
    def feed(connection: int) -> Iterator[str | None]:
        base = 1_763_700_000_000 + connection * 1000
        yield mini_ticker("BTCUSDT", "64000.5", base)
        yield "not json"
        yield mini_ticker("ETHUSDT", "3200.25", base + 1)
        if connection == 1:
            yield None  # the server drops the first connection

    stream = FakeBinanceStream(feed)
    try:
        source = BinanceWebSocketSource(["BTC", "ETH"], stream.url, policy=FAST)
        ticks = [tick for batch in first_batches(source, 4) for tick in batch]
    finally:
        stream.close()

    assert [(t.symbol, t.price, t.source) for t in ticks[:2]] == [
        ("BTC", 64000.5, "binance-ws"),
        ("ETH", 3200.25, "binance-ws"),
    ]
    assert len(ticks) == 4 and stream.connections == 2
    assert source.reconnects == 1 and source.stats.skipped >= 2
    assert stream.paths[0] == "/stream?streams=btcusdt@miniTicker/ethusdt@miniTicker"


def test_binance_websocket_retries_until_the_server_answers() -> None:
    def feed(connection: int) -> Iterator[str | None]:
        yield mini_ticker("BTCUSDT", "1.5", 1_763_700_000_000)

    stream = FakeBinanceStream(feed)
    url = stream.url
    stream.close()
    source = BinanceWebSocketSource(["BTC"], url, policy=FAST, open_timeout=1)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    assert list(source.batches(stop)) == []  # refused connections, retried until stopped


def test_simulated_is_deterministic_for_a_seed_and_unique_in_time() -> None:
    def prices(seed: int) -> list[float]:
        source = SimulatedSource(["BTC", "ETH", "SOL"], seed=seed)
        return [tick.price for tick in first_batches(source, 1)[0]]

    assert prices(7) == prices(7)
    assert prices(7) != prices(8)
    ticks = first_batches(SimulatedSource(["BTC", "ETH"], seed=1), 4)
    identities = [tick.identity for batch in ticks for tick in batch]
    assert len(identities) == len(set(identities)) == 2000
    assert 30_000 < ticks[0][0].price < 120_000


def test_simulated_keeps_its_rate() -> None:
    source = SimulatedSource(["BTC"], rate=200)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    count = sum(len(batch) for batch in source.batches(stop))
    assert 150 <= count <= 210


def test_replay_keeps_identities_and_skips_bad_lines(tmp_path: Path) -> None:
    recorded = [
        tick for batch in first_batches(SimulatedSource(["BTC", "ETH"]), 1) for tick in batch
    ][:10]
    path = tmp_path / "ticks.jsonl"
    path.write_bytes(
        b"".join(tick.to_json() + b"\n" for tick in recorded[:5]) + b"{broken\n\n"
        + b"".join(tick.to_json() + b"\n" for tick in recorded[5:])
    )  # fmt: skip
    source = ReplaySource([], path)

    replayed = [tick for batch in first_batches(source, 10) for tick in batch]

    assert [tick.identity for tick in replayed] == [tick.identity for tick in recorded]
    assert source.stats.skipped == 1


def test_auto_uses_binance_when_it_answers(api: FakeApi) -> None:
    api.script(TICKER, GOOD)
    settings = load_settings(binance_base_url=api.url, symbols=["BTC", "ETH"])

    assert build_source(settings, source="auto").name == "binance"


def test_auto_falls_back_to_simulated_loudly(
    api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.script(TICKER, Reply(503))
    settings = load_settings(binance_base_url=api.url, coinranking_api_key=None)

    source = build_source(settings, source="auto")

    assert source.name == "simulated"
    assert "NO LIVE SOURCE ANSWERED" in caplog.text
    assert first_batches(source, 1)[0][0].source == "simulated"


def test_unknown_source_name_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown source 'nasdaq'"):
        build_source(load_settings(), source="nasdaq")


def test_a_restarted_simulator_reuses_no_identity(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    first = SimulatedSource(["BTC", "ETH"], state_file=mark)
    ran_ahead = [first.next_tick("BTC") for _ in range(5_000)]  # far ahead of the clock
    assert ran_ahead[-1].event_time_ms > now_ms() + 1_000

    restarted = SimulatedSource(["BTC", "ETH"], state_file=mark)
    after = [restarted.next_tick("BTC") for _ in range(100)]

    assert not {t.identity for t in ran_ahead} & {t.identity for t in after}


def test_a_missing_high_water_mark_is_a_fresh_start(tmp_path: Path) -> None:
    mark = tmp_path / "data" / "mark"

    source = SimulatedSource(["BTC"], state_file=mark)
    source.next_tick("BTC")

    assert int(mark.read_text()) > now_ms()  # reserved ahead, before the time was used


def unreadable_marks(path: Path) -> dict[str, Callable[[], object]]:
    """Ways a high-water-mark file can be there and yet hold no mark."""
    return {
        "garbage": lambda: path.write_bytes(b"\x00\xff garbage"),
        "truncated": lambda: path.write_text(""),
        "json": lambda: path.write_text('{"mark": 1763700000000'),
        "float": lambda: path.write_text("1.7637e12"),
        "negative": lambda: path.write_text("-1763700000000"),
        "directory": path.mkdir,
    }


@pytest.mark.parametrize("case", list(unreadable_marks(Path())))
def test_an_unreadable_high_water_mark_is_a_clear_error_not_zero(tmp_path: Path, case: str) -> None:
    mark = tmp_path / "mark"
    unreadable_marks(mark)[case]()

    with pytest.raises(HighWaterMarkError) as raised:
        SimulatedSource(["BTC"], state_file=mark)

    message = str(raised.value)
    assert "\n" not in message and str(mark) in message
    assert "restore it" in message and "delete it" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_a_high_water_mark_without_read_permission_is_a_clear_error(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    mark.write_text("1763700000000")
    mark.chmod(0)

    with pytest.raises(HighWaterMarkError, match="Permission denied"):
        SimulatedSource(["BTC"], state_file=mark)


def test_a_high_water_mark_that_cannot_be_kept_stops_the_source(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    mark.with_suffix(".tmp").mkdir()  # where the next mark is written before it replaces one
    source = SimulatedSource(["BTC"], state_file=mark)

    with pytest.raises(HighWaterMarkError, match="cannot keep"):
        source.next_tick("BTC")


def test_retry_after_holds_across_polls(api: FakeApi) -> None:
    api.script(TICKER, Reply(429, {"code": -1003}, {"Retry-After": "1.5"}), GOOD)
    source = binance(api, attempts=1)

    with pytest.raises(SourceUnavailable, match="HTTP 429"):
        source.poll()
    with pytest.raises(SourceUnavailable, match="Retry-After"):
        source.poll()  # the next poll comes too soon: the server is not asked
    assert len(api.hits(TICKER)) == 1
    time.sleep(1.6)
    assert len(source.poll()) == 2


def test_auto_keeps_the_probe_ticks_then_runs_the_source_with_retries(api: FakeApi) -> None:
    later = Reply(body=[binance_ticker("BTCUSDT", "64100.00"), binance_ticker("ETHUSDT", "3210")])
    api.script(TICKER, GOOD, Reply(503), later)
    settings = load_settings(binance_base_url=api.url, symbols=["BTC", "ETH"])

    source = build_source(settings, source="auto", interval=0.1)
    probe_ticks, next_ticks = first_batches(source, 2)

    assert [t.price for t in probe_ticks] == [64000.10, 3200.5]
    assert [t.price for t in next_ticks] == [64100.0, 3210.0]  # the 503 was retried
    assert source.stats.failed_requests == 0
    assert len(api.hits(TICKER)) == 3
